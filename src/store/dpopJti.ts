// The fleet-wide replay cache of DPoP proof jtis (migrations/005_dpop_jti.ts; src/dpop/replay.ts).
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export class DpopJtiRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Records `key` unless it is there already: true for the first use, false for a replay. One
   * statement: the primary key decides between concurrent inserts from any process or instance.
   */
  async insertIfAbsent(key: string, expiresAt: number): Promise<boolean> {
    const r = await this.db.insertInto('dpop_jti').values({ key, expires_at: expiresAt }).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async pruneExpired(now: number): Promise<number> {
    const r = await this.db.deleteFrom('dpop_jti').where('expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
