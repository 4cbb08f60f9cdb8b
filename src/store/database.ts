// The store's connection: SQLite (better-sqlite3, WAL) by default, PostgreSQL for a fleet.
import SQLite from 'better-sqlite3';
import { Kysely, type Migration, type MigrationProvider, Migrator, PostgresAdapter, PostgresDialect } from 'kysely';
import pg from 'pg';
import { type Dialect, migrations } from '../../migrations/index.js';
import type { Logger } from '../logger.js';
import { SAFETY_NET_PAGES, startCheckpointer } from './checkpointer.js';
import { secureStoreFiles } from './filePermissions.js';
import type { Database } from './schema.js';
import { type StatementSource, TollgateSqliteDialect } from './sqliteDriver.js';

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
   * SQLite file: checkpoint the WAL on a thread of its own (checkpointer.ts) instead of inside
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

// PostgreSQL returns bigint (int8) as a string by default; our bigints are epoch milliseconds
// and serial ids, well inside Number.MAX_SAFE_INTEGER.
pg.types.setTypeParser(20, (v) => Number(v));

export function openStore(url: string, options: StoreOptions = {}): Store {
  if (isPostgresUrl(url)) {
    const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
    // an idle client losing its connection must not crash the process
    pool.on('error', () => undefined);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const u = new URL(url);
    u.password = '';
    const listeners = new Set<Listener>();
    return {
      db,
      dialect: 'postgres',
      location: u.toString(),
      listen: async (channel, onNotify, onError) => {
        const listener = await listenPostgres(url, channel, onNotify, onError);
        listeners.add(listener);
        return {
          close: () => {
            listeners.delete(listener);
            return listener.close();
          },
        };
      },
      async close() {
        for (const l of [...listeners]) await l.close();
        listeners.clear();
        await db.destroy();
      },
    };
  }
  if (url !== ':memory:') {
    // before SQLite creates anything: the folder 0700 and the files 0600 (filePermissions.ts)
    const loose = secureStoreFiles(url);
    if (loose.length > 0) {
      const left = loose.some((p) => p.action === 'left');
      options.logger?.warn({ paths: loose }, `the store was readable by other users${left ? ': chmod what was left as it is (a folder 0700, a file 0600) unless it is shared on purpose' : '; its files are now 0600'}`);
    }
  }
  const sqlite = new SQLite(url);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  // a busy database is waited for by the driver (busyTimeoutMs), without blocking the event loop
  const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000));
  sqlite.pragma('busy_timeout = 0');
  const checkpointer = options.backgroundCheckpoints && url !== ':memory:' ? startCheckpointer(url) : undefined;
  if (checkpointer) sqlite.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
  const db = new Kysely<Database>({ dialect: new TollgateSqliteDialect(withStatementCache(sqlite), { timeoutMs: busyTimeoutMs }) });
  return {
    db,
    dialect: 'sqlite',
    location: url,
    async close() {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

/** The dialect behind a Kysely instance or transaction (for the few statements that differ). */
export function dialectOf(db: Kysely<Database>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

/**
 * One pg.Client outside the pool, LISTENing on `channel`; reconnects with backoff when the
 * connection drops (a server restart, a failover, an idle timeout on the way) until closed.
 */
async function listenPostgres(url: string, channel: string, onNotify: () => void, onError: (err: Error) => void = () => undefined): Promise<Listener> {
  if (!CHANNEL.test(channel)) throw new Error(`invalid channel name ${channel}`);
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let delay = RECONNECT_MIN_MS;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: 'tollgate-listen' });
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify();
    });
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      c.removeAllListeners('notification');
      c.end().catch(() => undefined);
      if (client === c) client = undefined;
      if (closed) return;
      if (err) onError(err);
      schedule();
    };
    c.on('error', (err) => drop(err));
    c.on('end', () => drop(new Error('the LISTEN connection ended')));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (e) {
      dropped = true;
      c.end().catch(() => undefined);
      throw e;
    }
    if (closed) {
      dropped = true;
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    delay = RECONNECT_MIN_MS;
  };

  const schedule = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect()
        .then(() => {
          // whatever was notified while we were away
          if (!closed) onNotify();
        })
        .catch((err: unknown) => {
          onError(err instanceof Error ? err : new Error(String(err)));
          delay = Math.min(delay * 2, RECONNECT_MAX_MS);
          schedule();
        });
    }, delay);
    retry.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      retry = undefined;
      const c = client;
      client = undefined;
      if (c) await c.end().catch(() => undefined);
    },
  };
}

/**
 * Kysely's SQLite driver prepares every statement anew; the hot paths run the same few SQL strings
 * thousands of times a second, so prepared statements are kept (bounded, oldest out). Safe on one
 * connection: the driver runs one statement at a time on it.
 */
function withStatementCache(sqlite: SQLite.Database, max = 256): StatementSource {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    get inTransaction() {
      return sqlite.inTransaction;
    },
    prepare(text: string) {
      let stmt = cache.get(text);
      if (!stmt) {
        stmt = sqlite.prepare(text);
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
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
