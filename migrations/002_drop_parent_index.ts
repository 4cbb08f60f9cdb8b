// refresh_tokens.parent_hash is kept (the chain of a family, for forensics) but nothing looks a
// token up by its parent: its index cost a random b-tree write on every rotation (a quarter of the
// SQLite time of a refresh_token grant) for no reader.
import type { Kysely } from 'kysely';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('refresh_tokens_parent').ifExists().execute();
}
