import type { Kysely } from 'kysely';
import type { Database, KeyState, SigningKeyRow } from './schema.js';

export type NewSigningKey = Omit<SigningKeyRow, 'activated_at' | 'retired_at' | 'removed_at'> & Partial<Pick<SigningKeyRow, 'activated_at'>>;

export class SigningKeyRepository {
  constructor(private readonly db: Kysely<Database>) {}

  all(): Promise<SigningKeyRow[]> {
    return this.db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
  }

  /** kid:state of every key: a cheap fingerprint that tells a running server to reload. */
  async fingerprint(): Promise<string> {
    const rows = await this.db.selectFrom('signing_keys').select(['kid', 'state']).orderBy('kid').execute();
    return rows.map((r) => `${r.kid}:${r.state}`).join(',');
  }

  byState(state: KeyState): Promise<SigningKeyRow[]> {
    return this.db.selectFrom('signing_keys').selectAll().where('state', '=', state).orderBy('created_at').orderBy('kid').execute();
  }

  find(kid: string): Promise<SigningKeyRow | undefined> {
    return this.db.selectFrom('signing_keys').selectAll().where('kid', '=', kid).executeTakeFirst();
  }

  async insert(row: NewSigningKey): Promise<void> {
    await this.db.insertInto('signing_keys').values({ activated_at: null, retired_at: null, removed_at: null, ...row }).execute();
  }

  /** Compare-and-set of a key's state: false when another process changed it first. */
  async transition(kid: string, from: KeyState, to: KeyState, at: number): Promise<boolean> {
    const stamp = to === 'active' ? { activated_at: at } : to === 'retired' ? { retired_at: at } : to === 'removed' ? { removed_at: at } : {};
    const r = await this.db.updateTable('signing_keys').set({ state: to, ...stamp }).where('kid', '=', kid).where('state', '=', from).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Retired keys whose every token has expired leave the JWKS. */
  async removeRetiredBefore(cutoff: number, at: number): Promise<string[]> {
    const rows = await this.db.selectFrom('signing_keys').select('kid').where('state', '=', 'retired').where('retired_at', '<', cutoff).execute();
    const removed: string[] = [];
    for (const { kid } of rows) if (await this.transition(kid, 'retired', 'removed', at)) removed.push(kid);
    return removed;
  }
}
