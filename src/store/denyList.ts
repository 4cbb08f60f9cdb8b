import { type Insertable, type Kysely, sql } from 'kysely';
import { dialectOf } from './database.js';
import { prepared } from './prepared.js';
import type { Database, DenyListRow, DenyListTable, DenyType } from './schema.js';

type DenyInsert = Required<Omit<Insertable<DenyListTable>, 'id'>>;

// the revocation path's statements, compiled once (see prepared.ts)
const insertOneQuery = prepared<DenyInsert, never>(['type', 'value', 'issued_before', 'expires_at', 'created_at'], (db, p) => db.insertInto('deny_list').values(p));
const allAfterQuery = prepared<{ cursor: number; limit: number }, DenyListRow>(['cursor', 'limit'], (db, p) =>
  db.selectFrom('deny_list').selectAll().where('id', '>', p.cursor).orderBy('id').limit(p.limit),
);

/** PostgreSQL NOTIFY channel: every instance LISTENs and syncs its deny list on a notification. */
export const DENY_LIST_CHANNEL = 'tollgate_deny_list';

// pg_advisory_xact_lock key for deny-list writers: "tolldeny" in ASCII, as one bigint
const DENY_LIST_WRITE_LOCK = 0x746f6c6c64656e79n;

export interface NewDenyEntry {
  type: DenyType;
  value: string;
  issued_before?: number | null;
  expires_at: number;
}

export class DenyListRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Appends entries. The feed's cursor is the id, and a reader that has seen id N must never later
   * find a smaller id appear (a subscriber resuming with Last-Event-ID would miss it). SQLite has
   * one writer at a time, so ids commit in order. PostgreSQL sequences do not: two transactions
   * take ids 5 and 6, 6 commits first, a sync moves the cursor to 6 and 5 is never seen. So on
   * PostgreSQL the inserting transaction first takes a transaction-scoped advisory lock, held until
   * it commits: the next writer draws its id only after this one is visible, and ids become
   * visible in order. An advisory lock rather than LOCK TABLE deny_list IN SHARE ROW EXCLUSIVE
   * MODE because it serializes only the writers: the feed's readers, prune's DELETE and autovacuum
   * never wait for it. The cost is one writer at a time, for the few milliseconds before its
   * commit (callers add entries last in their transactions). NOTIFY is transactional too: it is
   * delivered on commit, so listeners never sync before the entries are visible.
   */
  async insert(entries: NewDenyEntry[], at: number): Promise<void> {
    if (entries.length === 0) return;
    const rows: DenyInsert[] = entries.map((e) => ({ type: e.type, value: e.value, issued_before: e.issued_before ?? null, expires_at: e.expires_at, created_at: at }));
    const [one] = rows;
    const insertRows = (db: Kysely<Database>) => (rows.length === 1 && one ? insertOneQuery(db, one) : db.insertInto('deny_list').values(rows).execute());
    if (dialectOf(this.db) !== 'postgres') {
      await insertRows(this.db);
      return;
    }
    const write = async (trx: Kysely<Database>) => {
      await sql`select pg_advisory_xact_lock(${sql.lit(DENY_LIST_WRITE_LOCK)})`.execute(trx);
      await insertRows(trx);
      await sql`notify ${sql.raw(DENY_LIST_CHANNEL)}`.execute(trx);
    };
    // outside a transaction the lock would be released before the insert: make one
    if (this.db.isTransaction) await write(this.db);
    else await this.db.transaction().execute(write);
  }

  /** Live entries after a cursor (id), oldest first. */
  after(cursor: number, nowSeconds: number, limit: number): Promise<DenyListRow[]> {
    return this.db.selectFrom('deny_list').selectAll().where('id', '>', cursor).where('expires_at', '>', nowSeconds).orderBy('id').limit(limit).execute();
  }

  /** Every entry after a cursor, expired or not (the in-memory sync also learns the high-water mark). */
  async allAfter(cursor: number, limit: number): Promise<DenyListRow[]> {
    return (await allAfterQuery(this.db, { cursor, limit })).rows;
  }

  async prune(nowSeconds: number): Promise<number> {
    const r = await this.db.deleteFrom('deny_list').where('expires_at', '<=', nowSeconds).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /**
   * The highest id the store has ever assigned to an entry, whether or not that entry is still in
   * the table: the head of the feed, beyond which a cursor names nothing (400). max(id) alone would
   * fall back once prune deleted the newest rows, and a client's valid cursor would then look like
   * one from the future. So the id generator's own high-water mark is read as well: SQLite's
   * AUTOINCREMENT keeps it in sqlite_sequence (the table is AUTOINCREMENT precisely so that ids are
   * never reused), PostgreSQL in the bigserial's sequence (pg_sequence_last_value: NULL until the
   * first nextval, or after setval(…, false), which is what `tollgate db copy` leaves; hence max(id)
   * too). On PostgreSQL the sequence may run ahead of what is committed (an id drawn by a
   * transaction still in flight, or rolled back): such a cursor is accepted, which is harmless, as
   * no one was ever handed it.
   */
  async lastAssignedId(): Promise<number> {
    const sequence =
      dialectOf(this.db) === 'postgres'
        ? sql<number>`pg_sequence_last_value(pg_get_serial_sequence('deny_list', 'id')::regclass)`
        : sql<number>`(select seq from sqlite_sequence where name = 'deny_list')`;
    const { rows } = await sql<{ seq: number | string | null; max: number | string | null }>`select ${sequence} as seq, (select max(id) from deny_list) as max`.execute(this.db);
    const row = rows[0];
    return Math.max(Number(row?.seq ?? 0), Number(row?.max ?? 0));
  }
}
