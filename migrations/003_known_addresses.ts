// Issue 15: strangers must not lock an owner out. Past a username's failure limit, only addresses
// the user signed in from in the last 30 days may still try, so successful sign-ins are remembered
// per (user, address). The throttle's username keys now hold a keyed hash instead of the name as
// typed (sometimes a password typed into the wrong field): the old rows go, they match no new key.
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('known_addresses')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('last_success_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('known_addresses_pk', ['user_id', 'address'])
    .execute();
  await db.schema.createIndex('known_addresses_last_success').on('known_addresses').column('last_success_at').execute();
  await db.deleteFrom('login_failures').where('key', 'like', 'user:%').execute();
}
