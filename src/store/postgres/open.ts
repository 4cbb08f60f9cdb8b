// The PostgreSQL store (a fleet): a pool for queries, and a LISTEN connection per listener.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Listener, Store, StoreOptions } from '../database.js';
import type { Database } from '../schema.js';
import { listenPostgres } from './listen.js';

// PostgreSQL returns bigint (int8) as a string by default; our bigints are epoch milliseconds and
// serial ids, well inside Number.MAX_SAFE_INTEGER. Set on this pool's connections only, not on
// pg's global parsers: another pg user in the same process (an embedding application) keeps its own.
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function openPostgres(url: string, options: Pick<StoreOptions, 'poolSize'> = {}): Store {
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types });
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
