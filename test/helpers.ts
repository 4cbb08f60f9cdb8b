// Shared fixtures: an isolated app on an in-memory store in one line, users and clients in one
// line each, a clock the test controls, and a real listening server when a test needs sockets.
import crypto from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Kysely } from 'kysely';
import supertest from 'supertest';
import { type App, createApp } from '../src/app.js';
import type { Clock } from '../src/clock.js';
import { type Config, deepMerge, validateConfig } from '../src/config.js';
import { DenyList } from '../src/denylist/denyList.js';
import { KeyManager } from '../src/keys/keyManager.js';
import { createLogger } from '../src/logger.js';
import { AccessHorizon } from '../src/tokens/accessHorizon.js';
import { type Store, openStore } from '../src/store/database.js';
import type { Database } from '../src/store/schema.js';
import { type TestDatabase, createTestDatabase, testDialect } from './testDatabase.js';
import defaults from '../config/default.json' with { type: 'json' };

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  constructor(public ms = Date.UTC(2026, 10, 24, 12, 0, 0)) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** The default config with cheap argon2 and the test's overrides. */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  const base = deepMerge(defaults as Record<string, unknown>, {
    issuer: 'http://localhost:3000',
    database: { url: ':memory:' },
    keys: { encryptionKey: crypto.randomBytes(32).toString('base64url') },
    passwords: { memoryCostKiB: 1024, timeCost: 1, parallelism: 1, maxConcurrentHashes: 4, maxQueuedHashes: 64 },
    log: { level: 'silent' },
  });
  return validateConfig(deepMerge(base, overrides));
}

/** Captures JSON log lines (for redaction tests). */
export class LogCapture extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestApp {
  app: App;
  store: Store;
  config: Config;
  clock: Clock;
  request: ReturnType<typeof supertest>;
  /** Adds a user; returns its id (the `sub`). */
  addUser(username: string, password?: string, roles?: string[]): Promise<string>;
  /** Adds a client; returns its secret (undefined for a public client). */
  addClient(clientId: string, spec?: { public?: boolean; grants?: string[]; scope?: string; audience?: string; refreshGraceSeconds?: number; accessTokenTtl?: number; requireDpop?: boolean }): Promise<{ client_id: string; client_secret?: string }>;
  close(): Promise<void>;
}

export const PASSWORD = 'correct horse battery staple';

export interface TestAppOptions {
  config?: Record<string, unknown>;
  clock?: Clock;
  store?: Store;
  logs?: LogCapture;
  jobs?: boolean;
  kek?: Buffer;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  // `npm run test:postgres`: the same suite, each app on a fresh Postgres database, unless the
  // test brings its own store or names its own database
  const database = !options.store && !hasDatabaseUrl(options.config) && testDialect() === 'postgres' ? await createTestDatabase('postgres') : undefined;
  const config = testConfig(database ? deepMerge(options.config ?? {}, { database: { url: database.url } }) : options.config);
  let store: Store;
  try {
    store = options.store ?? (database ? database.open() : openStore(config.database.url, config.database));
  } catch (e) {
    await database?.drop();
    throw e;
  }
  const clock = options.clock ?? new FakeClock();
  const logger = createLogger(options.logs ? 'info' : 'silent', options.logs);
  let app: App;
  try {
    app = await createApp({ config, store, clock, logger, jobs: options.jobs ?? false, ...(options.kek ? { kek: options.kek } : {}) });
  } catch (e) {
    if (database) {
      await store.close();
      await database.drop();
    }
    throw e;
  }
  const server = http.createServer(app.callback());
  return {
    app,
    store,
    config,
    clock,
    request: supertest(server),
    async addUser(username, password = PASSWORD, roles = []) {
      return (await app.services.users.add(username, password, roles)).id;
    },
    async addClient(clientId, spec = {}) {
      const { secret } = await app.services.clients.add(clientId, spec);
      return secret ? { client_id: clientId, client_secret: secret } : { client_id: clientId };
    },
    async close() {
      await app.close();
      server.close();
      if (!options.store) await store.close();
      await database?.drop();
    },
  };
}

function hasDatabaseUrl(config: Record<string, unknown> | undefined): boolean {
  const database = config?.database;
  return typeof database === 'object' && database !== null && 'url' in database;
}

export interface SharedTestApps {
  /** The store's database (a temp SQLite file, or one Postgres database under test:postgres). */
  database: TestDatabase;
  apps: TestApp[];
  close(): Promise<void>;
}

/**
 * Several apps on one store, each with its own connection (pool), like the processes of a fleet or
 * a server and the CLI. They share one key-encryption key and, unless told otherwise, one clock.
 */
export async function createSharedTestApps(count: number, options: Omit<TestAppOptions, 'store'> & { dialect?: 'sqlite' | 'postgres' } = {}): Promise<SharedTestApps> {
  const { dialect, ...appOptions } = options;
  const database = await createTestDatabase(dialect);
  const kek = appOptions.kek ?? crypto.randomBytes(32);
  const clock = appOptions.clock ?? new FakeClock();
  const apps: TestApp[] = [];
  const stores: Store[] = [];
  const close = async () => {
    for (const t of apps) await t.close();
    for (const s of stores) await s.close();
    await database.drop();
  };
  try {
    // one after the other: the first migrates and creates the keys, the rest find them
    for (let i = 0; i < count; i++) {
      const store = database.open();
      stores.push(store);
      const t = await createTestApp({ ...appOptions, kek, clock, store, config: deepMerge(appOptions.config ?? {}, { database: { url: database.url } }) });
      apps.push(t);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { database, apps, close };
}

/** HTTP Basic credentials per RFC 6749 §2.3.1 (form-encode, then join). */
export function basic(client: { client_id: string; client_secret?: string | undefined }): string {
  const enc = (s: string) => new URLSearchParams({ v: s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(client.client_id)}:${enc(client.client_secret ?? '')}`).toString('base64')}`;
}

/** A listening server on a random loopback port, for tests that need real sockets (SSE, races). */
export async function listen(app: App): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port free on loopback right now (for child-process servers that need it up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Decodes a JWT's header and payload without verifying (tests only). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString()), payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) };
}

/** A password grant through the HTTP API. */
export function passwordGrant(t: TestApp, client: { client_id: string; client_secret?: string }, username: string, password = PASSWORD, extra: Record<string, string> = {}) {
  return t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'password', username, password, ...extra });
}

export function refreshGrant(t: TestApp, client: { client_id: string; client_secret?: string }, refreshToken: string, extra: Record<string, string> = {}) {
  return t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });
}

/** A KeyManager over a store, with the deny list and horizon it needs (as createServices builds it). */
export function keyManager(db: Kysely<Database>, kek: Buffer, clock: Clock): KeyManager {
  return new KeyManager({ db, kek, clock, denyList: new DenyList({ db, clock }), horizon: new AccessHorizon({ db, clock, defaultTtlSeconds: 300, clockToleranceSeconds: 5 }) });
}
