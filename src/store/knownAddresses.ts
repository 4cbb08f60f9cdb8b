// Where each user signed in successfully from, and when last: past a username's failure limit,
// only these addresses (IPv6: /64 prefixes) may still try (src/users/throttle.ts).
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export class KnownAddressRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a successful sign-in of `userId` from `address` at `at`. */
  async remember(userId: string, address: string, at: number): Promise<void> {
    await this.db
      .insertInto('known_addresses')
      .values({ user_id: userId, address, last_success_at: at })
      .onConflict((oc) => oc.columns(['user_id', 'address']).doUpdateSet((eb) => ({ last_success_at: eb.ref('excluded.last_success_at') })))
      .execute();
  }

  /**
   * Whether the user named `username` signed in from `address` after `since`. By name, in one
   * query whether or not the name exists, so the answer takes the same work for both.
   */
  async isKnown(username: string, address: string, since: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('known_addresses as k')
      .innerJoin('users as u', 'u.id', 'k.user_id')
      .select('k.user_id')
      .where('u.username', '=', username)
      .where('k.address', '=', address)
      .where('k.last_success_at', '>', since)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async pruneUntil(cutoff: number): Promise<number> {
    const r = await this.db.deleteFrom('known_addresses').where('last_success_at', '<=', cutoff).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
