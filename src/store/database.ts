// The store's connection: SQLite (better-sqlite3, WAL) by default, PostgreSQL for a fleet. Each
// engine's driver code is in sqlite/ and postgres/; this module is what the rest of Tollgate sees.
import { type Kysely, type Migration, type MigrationProvider, Migrator, PostgresAdapter, sql } from 'kysely';
import { type Dialect, migrations } from '../../migrations/index.js';
import type { Logger } from '../logger.js';
import { openPostgres } from './postgres/open.js';
import type { Database } from './schema.js';
import { openSqlite } from './sqlite/open.js';

export type { Dialect };

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** The SQLite file path or the (password-less) PostgreSQL URL, for messages. */
  location: string;
  close(): Promise<void>;
  /**
   * PostgreSQL only: LISTEN on a channel over a dedicated connection (a pooled one would be handed
   * to queries and lose its LISTEN), calling `onNotify` for each notification, and once after every
   * reconnect (notifications sent while disconnected are lost: the caller catches up).
   */
  listen?(channel: string, onNotify: () => void, onError?: (err: Error) => void): Promise<Listener>;
}

export interface Listener {
  close(): Promise<void>;
}

export interface StoreOptions {
  busyTimeoutMs?: number;
  poolSize?: number;
  /**
   * SQLite file: checkpoint the WAL on a thread of its own (sqlite/checkpointer.ts) instead of inside
   * the commits of this connection. For the server; a CLI command's few writes don't need it.
   */
  backgroundCheckpoints?: boolean;
  /**
   * SQLite file: where to warn when the store was found readable by others (the server at start;
   * the CLI and the workers of --workers tighten the files just as well, without a word).
   */
  logger?: Pick<Logger, 'warn'> | undefined;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export function openStore(url: string, options: StoreOptions = {}): Store {
  return isPostgresUrl(url) ? openPostgres(url, options) : openSqlite(url, options);
}

/** The dialect behind a Kysely instance or transaction (for the few statements that differ). */
export function dialectOf(db: Kysely<Database>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, m] of Object.entries(migrations)) out[name] = { up: (db) => m.up(db, this.dialect) };
    return Promise.resolve(out);
  }
}

export interface MigrationReport {
  applied: string[];
}

/** Applies every pending migration (Kysely's Migrator; it takes a lock, so concurrent starts are safe). */
export async function migrate(store: Store): Promise<MigrationReport> {
  const migrator = new Migrator({ db: store.db, provider: new StaticMigrationProvider(store.dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${why}`.replace(/\s+/g, ' '));
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}

/**
 * The handle the domain passes around: a connection, or the transaction it is inside. Only store/
 * knows it is Kysely; the domain opens transactions with inTransaction() and hands the handle to
 * repositories.
 */
export type Db = Kysely<Database>;

/** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
export function inTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(fn);
}

/** Whether the store answers a trivial query (readiness). */
export async function isReachable(db: Db): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
