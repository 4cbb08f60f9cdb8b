// Issue 17, DPoP (RFC 9449). `dpop_jti` is the fleet-wide replay cache of proof `jti`s (§11.1): one
// row per accepted proof, keyed by SHA-256(jkt, jti), so an instance that sees a proof another
// instance accepted finds its key taken (INSERT … ON CONFLICT DO NOTHING inserts nothing). Rows go
// once the proof is too old to be accepted anyway. A refresh-token family started with a proof is
// bound to that key for life (`dpop_jkt`, §5); a client with `require_dpop` must send a proof on
// every token request (§5.2 `dpop_bound_access_tokens`).
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('dpop_jti')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dpop_jti_expires_at').on('dpop_jti').column('expires_at').execute();
  await db.schema.alterTable('refresh_token_families').addColumn('dpop_jkt', 'text').execute();
  await db.schema.alterTable('clients').addColumn('require_dpop', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
