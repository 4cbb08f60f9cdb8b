import type { Kysely } from 'kysely';
import type { Database, DenyListRow, DenyType } from './schema.js';

export interface NewDenyEntry {
  type: DenyType;
  value: string;
  issued_before?: number | null;
  expires_at: number;
}

export class DenyListRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(entries: NewDenyEntry[], at: number): Promise<void> {
    if (entries.length === 0) return;
    await this.db
      .insertInto('deny_list')
      .values(entries.map((e) => ({ type: e.type, value: e.value, issued_before: e.issued_before ?? null, expires_at: e.expires_at, created_at: at })))
      .execute();
  }

  /** Live entries after a cursor (id), oldest first. */
  after(cursor: number, nowSeconds: number, limit: number): Promise<DenyListRow[]> {
    return this.db.selectFrom('deny_list').selectAll().where('id', '>', cursor).where('expires_at', '>', nowSeconds).orderBy('id').limit(limit).execute();
  }

  /** Every entry after a cursor, expired or not (the in-memory sync also learns the high-water mark). */
  allAfter(cursor: number, limit: number): Promise<DenyListRow[]> {
    return this.db.selectFrom('deny_list').selectAll().where('id', '>', cursor).orderBy('id').limit(limit).execute();
  }

  async prune(nowSeconds: number): Promise<number> {
    const r = await this.db.deleteFrom('deny_list').where('expires_at', '<=', nowSeconds).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async maxId(): Promise<number> {
    const row = await this.db.selectFrom('deny_list').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    return Number(row?.id ?? 0);
  }
}
