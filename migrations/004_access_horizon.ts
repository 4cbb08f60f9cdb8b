// Issue 14: a deny-list entry must last until every token it can deny has expired, whatever the
// configuration has become since those tokens were issued. `horizons` keeps what was issued under
// settings that no longer hold: `access` is the latest `exp` (epoch ms) of an access token issued
// under a lifetime since shortened or removed (a client's --access-token-ttl, a removed client, the
// configured default), and `default_ttl` the configured default lifetime last seen (seconds).
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('horizons')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .execute();
}
