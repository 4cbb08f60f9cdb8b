// Issue 18: the Token Status List (draft-ietf-oauth-status-list). `status_lists` are the published
// lists (`/statuslists/<id>`), each with a version bumped in the same transaction as any change of
// its bits, so every instance of a fleet re-renders when the store changed. `status_slots` are the
// indices in use: who owns each (user, client, refresh family: how a revocation finds "every token
// of the user"), whether it is INVALID, and until when it is taken (every token that used it has
// expired by then; after a quarantine it is free again). A refresh family keeps its slot on its
// own row (no extra read on refresh): all the access tokens of a session share one index.
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('status_lists')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('position', 'integer', (c) => c.notNull().unique())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('version', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('status_slots')
    .addColumn('list_id', 'text', (c) => c.notNull().references('status_lists.id'))
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('family_id', 'text')
    .addColumn('invalid', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('status_slots_pk', ['list_id', 'idx'])
    .execute();
  await db.schema.createIndex('status_slots_user').on('status_slots').column('user_id').execute();
  await db.schema.createIndex('status_slots_client').on('status_slots').column('client_id').execute();
  await db.schema.createIndex('status_slots_family').on('status_slots').column('family_id').execute();
  await db.schema.createIndex('status_slots_expiry').on('status_slots').column('expires_at').execute();
  await db.schema.alterTable('refresh_token_families').addColumn('status_list', 'text').execute();
  await db.schema.alterTable('refresh_token_families').addColumn('status_idx', 'integer').execute();
}
