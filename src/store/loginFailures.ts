// The sign-in throttle's counters: one row per failed (or still unproven) password attempt and
// per counter it counts against. Keys are built by the throttle (src/users/throttle.ts); no key
// holds a username as typed.
import { type Kysely, sql } from 'kysely';
import { dialectOf } from './database.js';
import type { Database } from './schema.js';

export class LoginFailureRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Inside a transaction: waits until no other transaction holds any of these counters, and holds
   * them until this one ends, so an attempt counts every attempt committed before it. PostgreSQL:
   * transaction-level advisory locks, taken in one order (no deadlock between two attempts). SQLite
   * needs none: a transaction there holds the one write lock (BEGIN IMMEDIATE) from its start.
   */
  async lockCounters(keys: readonly string[]): Promise<void> {
    if (dialectOf(this.db) !== 'postgres') return;
    for (const key of [...new Set(keys)].sort()) await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(this.db);
  }

  /** One row per key, all at `at`; returns their ids (ascending order of insertion). */
  async add(keys: readonly string[], at: number): Promise<number[]> {
    const rows = await this.db
      .insertInto('login_failures')
      .values(keys.map((key) => ({ key, at })))
      .returning('id')
      .execute();
    return rows.map((r) => Number(r.id));
  }

  /**
   * The times of the `limit` most recent failures of `key` after `since`, among the rows inserted
   * before row `before`, newest first.
   */
  async recent(key: string, since: number, before: number, limit: number): Promise<number[]> {
    const rows = await this.db.selectFrom('login_failures').select('at').where('key', '=', key).where('at', '>', since).where('id', '<', before).orderBy('at', 'desc').limit(limit).execute();
    return rows.map((r) => Number(r.at));
  }

  /** How many failures of `key` after `since`, and the highest id among them (0 for none). */
  async count(key: string, since: number): Promise<{ count: number; maxId: number }> {
    const row = await this.db
      .selectFrom('login_failures')
      .select((eb) => [eb.fn.countAll<number | string>().as('count'), eb.fn.max('id').as('max_id')])
      .where('key', '=', key)
      .where('at', '>', since)
      .executeTakeFirst();
    return { count: Number(row?.count ?? 0), maxId: Number(row?.max_id ?? 0) };
  }

  async remove(ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await this.db.deleteFrom('login_failures').where('id', 'in', ids).execute();
  }

  /** Every failure of `key`, or only those up to row `upTo`. */
  async clear(key: string, upTo?: number): Promise<void> {
    let query = this.db.deleteFrom('login_failures').where('key', '=', key);
    if (upTo !== undefined) query = query.where('id', '<=', upTo);
    await query.execute();
  }

  async pruneUntil(cutoff: number): Promise<number> {
    const r = await this.db.deleteFrom('login_failures').where('at', '<=', cutoff).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
