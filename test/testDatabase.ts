// Throwaway stores for tests: a fresh PostgreSQL database on the cluster named by
// TOLLGATE_TEST_POSTGRES_URL (scripts/with-postgres.sh sets it), or a temp SQLite file.
// `npm run test:postgres` runs the whole suite again with every test app on its own Postgres
// database; test/fleet/ needs Postgres and skips without it, except where it must fail (CI).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, it } from 'vitest';
import { type Dialect, type Store, openStore } from '../src/store/database.js';

/**
 * The cluster URL, or undefined when the suite runs on SQLite. Under scripts/with-postgres.sh
 * (TOLLGATE_TEST_POSTGRES_EXPECTED) with CI set, a missing URL is an error: CI must not pass a
 * Postgres run that never touched Postgres.
 */
export function postgresTestUrl(): string | undefined {
  const url = process.env.TOLLGATE_TEST_POSTGRES_URL;
  if (url) return url;
  if (postgresRequired()) throw new Error('TOLLGATE_TEST_POSTGRES_URL is not set: scripts/with-postgres.sh could not start PostgreSQL, and CI requires it');
  return undefined;
}

/** True when this run must reach Postgres (CI, under scripts/with-postgres.sh). */
export function postgresRequired(): boolean {
  return Boolean(process.env.CI) && process.env.TOLLGATE_TEST_POSTGRES_EXPECTED === '1';
}

/** The dialect this run of the shared suite uses (throws when the run requires Postgres and has none). */
export function testDialect(): Dialect {
  return postgresTestUrl() ? 'postgres' : 'sqlite';
}

/**
 * A describe() for tests that only mean something on PostgreSQL (several instances on one
 * database): runs under test:postgres, skips under plain `npm test`, and fails instead of
 * skipping when Postgres was required but is missing.
 */
export function describePostgres(name: string, fn: () => void): void {
  if (process.env.TOLLGATE_TEST_POSTGRES_URL) describe(name, fn);
  else if (postgresRequired())
    describe(name, () => {
      it('needs PostgreSQL', () => {
        throw new Error('TOLLGATE_TEST_POSTGRES_URL is not set: scripts/with-postgres.sh could not start PostgreSQL, and CI requires it');
      });
    });
  else describe.skip(name, fn);
}

export interface TestDatabase {
  dialect: Dialect;
  /** What openStore() takes: a postgres:// URL or a SQLite file path. */
  url: string;
  /** A new connection (pool) to this database; each call is like another process. */
  open(): Store;
  /** Removes the database; close every store opened on it first. */
  drop(): Promise<void>;
}

/** A fresh, empty database: on the Postgres cluster when there is one (or when asked), else a temp SQLite file. */
export async function createTestDatabase(dialect: Dialect = testDialect()): Promise<TestDatabase> {
  if (dialect === 'postgres') {
    const cluster = postgresTestUrl();
    if (!cluster) throw new Error('a Postgres test database needs TOLLGATE_TEST_POSTGRES_URL (run under scripts/with-postgres.sh)');
    return createPostgresDatabase(cluster);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-test-'));
  const file = path.join(dir, 'tollgate.db');
  return {
    dialect: 'sqlite',
    url: file,
    open: () => openStore(file),
    drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

async function admin<T>(clusterUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: clusterUrl });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function createPostgresDatabase(clusterUrl: string): Promise<TestDatabase> {
  // a name we generate ourselves: safe to put in DDL, which takes no bind parameters
  const name = `tollgate_t_${crypto.randomBytes(8).toString('hex')}`;
  await admin(clusterUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    dialect: 'postgres',
    url: url.toString(),
    open: () => openStore(url.toString(), { poolSize: 5 }),
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE: a test that failed half-way may have left a connection open
      await admin(clusterUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
