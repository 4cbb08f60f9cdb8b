// The Token Status List's tables (migrations/006_status_list.ts): the lists, the slots in use, and
// the version bumps that tell every instance a list changed. Every statement runs on SQLite and
// PostgreSQL; the ones that change bits run inside the caller's transaction.
import { type Kysely, sql } from 'kysely';
import { prepared } from './prepared.js';
import type { Database, StatusListsTable, StatusSlotsTable } from './schema.js';

// a family's revocation (RFC 7009, reuse detection) is on a hot path: compiled once (see prepared.ts)
const bumpFamilyListsQuery = prepared<{ familyId: string }, never>(['familyId'], (db, p) =>
  db
    .updateTable('status_lists')
    .set((eb) => ({ version: eb('version', '+', eb.lit(1)) }))
    .where('id', 'in', db.selectFrom('status_slots').select('list_id').where('family_id', '=', p.familyId).where('invalid', '=', sql.lit(0))),
);
const invalidateFamilyQuery = prepared<{ familyId: string }, never>(['familyId'], (db, p) =>
  db.updateTable('status_slots').set({ invalid: sql.lit(1) }).where('family_id', '=', p.familyId).where('invalid', '=', sql.lit(0)),
);

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
    if ('family_id' in owner) {
      await bumpFamilyListsQuery(this.db, { familyId: owner.family_id });
      return Number((await invalidateFamilyQuery(this.db, { familyId: owner.family_id })).numAffectedRows);
    }
    const where = ownerCondition(owner);
    await this.db
      .updateTable('status_lists')
      .set((eb) => ({ version: eb('version', '+', 1) }))
      .where('id', 'in', this.db.selectFrom('status_slots').select('list_id').where(where).where('invalid', '=', 0))
      .execute();
    const r = await this.db.updateTable('status_slots').set({ invalid: 1 }).where(where).where('invalid', '=', 0).executeTakeFirst();
    return Number(r.numUpdatedRows);
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

function ownerCondition(owner: SlotOwner) {
  if ('family_id' in owner) return sql<boolean>`family_id = ${owner.family_id}`;
  if ('user_id' in owner) return sql<boolean>`user_id = ${owner.user_id}`;
  if ('client_id' in owner) return sql<boolean>`client_id = ${owner.client_id}`;
  return sql<boolean>`list_id = ${owner.list_id} and idx = ${owner.idx}`;
}
