// The SQLite store: one better-sqlite3 connection in WAL mode, driven by Tollgate's own driver
// (driver.ts), its files private to the user Tollgate runs as (filePermissions.ts).
import SQLite from 'better-sqlite3';
import { Kysely } from 'kysely';
import type { Store, StoreOptions } from '../database.js';
import type { Database } from '../schema.js';
import { SAFETY_NET_PAGES, startCheckpointer } from './checkpointer.js';
import { TollgateSqliteDialect } from './driver.js';
import { secureStoreFiles } from './filePermissions.js';
import { withStatementCache } from './statementCache.js';

export function openSqlite(url: string, options: StoreOptions = {}): Store {
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
