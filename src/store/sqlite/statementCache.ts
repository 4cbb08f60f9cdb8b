import type SQLite from 'better-sqlite3';
import type { StatementSource } from './connection.js';

/**
 * Kysely's SQLite driver prepares every statement anew; the hot paths run the same few SQL strings
 * thousands of times a second, so prepared statements are kept (bounded, oldest out). Safe on one
 * connection: the driver runs one statement at a time on it.
 */
export function withStatementCache(sqlite: SQLite.Database, max = 256): StatementSource {
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
