// The Token Status List's tables (migrations/006_status_list.ts): the lists, the slots in use, and
// the version bumps that tell every instance a list changed. Every statement runs on SQLite and
// PostgreSQL; the ones that change bits run inside the caller's transaction.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { prepared } from './prepared.js';
import type { Database, StatusListsTable, StatusSlotsTable } from './schema.js';

/**
 * The two statements of a revocation's bits, for one kind of owner: bump the version of each list
 * that will change, then mark the owner's slots INVALID. Revoking an access token (a slot) or a
 * family is a hot path, so every kind is compiled once (see prepared.ts).
 */
function invalidation<Args extends Record<string, unknown>>(names: readonly (keyof Args & string)[], owns: (p: Readonly<Args>) => RawBuilder<boolean>) {
  return {
    bump: prepared<Args, never>(names, (db, p) =>
      db
        .updateTable('status_lists')
        .set((eb) => ({ version: eb('version', '+', eb.lit(1)) }))
        .where('id', 'in', db.selectFrom('status_slots').select('list_id').where(owns(p)).where('invalid', '=', sql.lit(0))),
    ),
    mark: prepared<Args, never>(names, (db, p) => db.updateTable('status_slots').set({ invalid: sql.lit(1) }).where(owns(p)).where('invalid', '=', sql.lit(0))),
  };
}

const INVALIDATE = {
  family: invalidation<{ family_id: string }>(['family_id'], (p) => sql<boolean>`family_id = ${p.family_id}`),
  user: invalidation<{ user_id: string }>(['user_id'], (p) => sql<boolean>`user_id = ${p.user_id}`),
  client: invalidation<{ client_id: string }>(['client_id'], (p) => sql<boolean>`client_id = ${p.client_id}`),
  slot: invalidation<{ list_id: string; idx: number }>(['list_id', 'idx'], (p) => sql<boolean>`list_id = ${p.list_id} and idx = ${p.idx}`),
};

export type StatusListRow = StatusListsTable;
export type StatusSlotRow = StatusSlotsTable;

/** Which slots a revocation covers. */
export type SlotOwner = { family_id: string } | { user_id: string } | { client_id: string } | { list_id: string; idx: number };

export class StatusSlotRepository {
  constructor(private readonly db: Kysely<Database>) {}

  lists(): Promise<StatusListRow[]> {
    return this.db.selectFrom('status_lists').selectAll().orderBy('position').execute();
  }

  list(id: string): Promise<StatusListRow | undefined> {
    return this.db.selectFrom('status_lists').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * The list at `position`, created unless another process did first. `existed`: it was there
   * before this call (a list created here may yet be rolled back with the caller's transaction).
   */
  async ensureList(position: number, size: number, now: number): Promise<{ list: StatusListRow; existed: boolean }> {
    const found = await this.db.selectFrom('status_lists').selectAll().where('position', '=', position).executeTakeFirst();
    if (found) return { list: found, existed: true };
    await this.db.insertInto('status_lists').values({ id: String(position), position, size, version: 0, created_at: now }).onConflict((oc) => oc.doNothing()).execute();
    const row = await this.db.selectFrom('status_lists').selectAll().where('position', '=', position).executeTakeFirst();
    if (!row) throw new Error(`status list at position ${position} could not be created`);
    return { list: row, existed: false };
  }

  /** Inserts the slots whose index is free; returns the indices this call took (one statement). */
  async claim(slots: StatusSlotRow[]): Promise<number[]> {
    if (slots.length === 0) return [];
    const rows = await this.db
      .insertInto('status_slots')
      .values(slots)
      .onConflict((oc) => oc.columns(['list_id', 'idx']).doNothing())
      .returning('idx')
      .execute();
    return rows.map((r) => Number(r.idx));
  }

  /** Indices published INVALID in a list. */
  async invalidIndices(listId: string): Promise<number[]> {
    const rows = await this.db.selectFrom('status_slots').select('idx').where('list_id', '=', listId).where('invalid', '=', 1).execute();
    return rows.map((r) => Number(r.idx));
  }

  /**
   * Marks the owner's slots INVALID and bumps the version of each list that changed, in the
   * caller's transaction: an instance that sees the new version renders the new bits.
   */
  async invalidate(owner: SlotOwner): Promise<number> {
    const run = async <A extends Record<string, unknown>>(q: ReturnType<typeof invalidation<A>>, args: A) => {
      await q.bump(this.db, args);
      return Number((await q.mark(this.db, args)).numAffectedRows);
    };
    if ('family_id' in owner) return run(INVALIDATE.family, owner);
    if ('user_id' in owner) return run(INVALIDATE.user, owner);
    if ('client_id' in owner) return run(INVALIDATE.client, owner);
    return run(INVALIDATE.slot, owner);
  }

  /** The family's live slot and what a new one needs, or undefined when it has none or is revoked. */
  familyForRehome(familyId: string): Promise<{ user_id: string; client_id: string; expires_at: number; status_list: string | null; status_idx: number | null } | undefined> {
    return this.db
      .selectFrom('refresh_token_families')
      .select(['user_id', 'client_id', 'expires_at', 'status_list', 'status_idx'])
      .where('id', '=', familyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
  }

  async setFamilySlot(familyId: string, listId: string, idx: number): Promise<void> {
    await this.db.updateTable('refresh_token_families').set({ status_list: listId, status_idx: idx }).where('id', '=', familyId).execute();
  }

  /**
   * Frees what every token has stopped using. A slot published INVALID is first cleared (VALID
   * again, its list's version bumped) and kept for `quarantineMs` more, so that no verifier still
   * holding a list from before the clearing can see a new token at that index as revoked; a VALID
   * slot past its expiry is deleted, and its index may be taken again. Run it in a transaction.
   */
  async prune(now: number, quarantineMs: number): Promise<{ cleared: number; freed: number }> {
    await this.db
      .updateTable('status_lists')
      .set((eb) => ({ version: eb('version', '+', 1) }))
      .where('id', 'in', this.db.selectFrom('status_slots').select('list_id').where('invalid', '=', 1).where('expires_at', '<', now))
      .execute();
    const cleared = await this.db.updateTable('status_slots').set({ invalid: 0, expires_at: now + quarantineMs }).where('invalid', '=', 1).where('expires_at', '<', now).executeTakeFirst();
    const freed = await this.db.deleteFrom('status_slots').where('invalid', '=', 0).where('expires_at', '<', now).executeTakeFirst();
    return { cleared: Number(cleared.numUpdatedRows), freed: Number(freed.numDeletedRows) };
  }
}

