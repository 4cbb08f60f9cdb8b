// Moving from SQLite to PostgreSQL: every table of a SQLite store into an empty, migrated PostgreSQL
// database, in one transaction (all or nothing). Rows keep their ids: the deny list's ids are the
// feed's cursors that resource servers resume from, so the sequences are set past them afterwards.
// Private signing keys stay encrypted under the same key-encryption key.
import { type InsertObject, type Kysely, type RawBuilder, sql } from 'kysely';
import type { Store } from './database.js';
import { DenyListRepository } from './denyList.js';
import type { Database } from './schema.js';

type Table = keyof Database;

interface TableCopy {
  table: Table;
  /** Only these rows (a SQL condition on the source), e.g. refresh families still worth keeping. */
  where?: (now: number) => RawBuilder<unknown>;
  /** A serial id column whose sequence must be set past the copied ids. */
  serial?: 'id';
}

// Families worth keeping are the ones prune would keep: usable, or with access tokens still live
// (a later revocation of the family must still deny its `sid`). Their tokens come along, spent ones
// included: a spent token presented again is how reuse is detected.
const liveFamily = (now: number) => sql`not (expires_at < ${now} and access_expires_at < ${now})`;

/** Parents before children (foreign keys). */
export const COPY_ORDER: readonly TableCopy[] = [
  { table: 'users' },
  { table: 'roles' },
  { table: 'user_roles' },
  { table: 'clients' },
  { table: 'refresh_token_families', where: liveFamily },
  { table: 'refresh_tokens', where: (now) => sql`family_id in (select id from refresh_token_families where ${liveFamily(now)})` },
  { table: 'signing_keys' },
  { table: 'deny_list', serial: 'id' },
  { table: 'audit_events', serial: 'id' },
  { table: 'login_failures', serial: 'id' },
  { table: 'known_addresses' },
  { table: 'horizons' },
  // issue 18: every slot, live or in quarantine (an index must not be reused before its time)
  { table: 'status_lists' },
  { table: 'status_slots' },
];

const PAGE = 500;

export class CopyError extends Error {
  override name = 'CopyError';
}

export interface CopyOptions {
  /** Epoch ms: which refresh families are still live. */
  now: number;
  /** Called after each table. */
  onTable?: (table: Table, rows: number) => void;
}

/** Copies `source` (SQLite) into `target` (PostgreSQL, migrated, empty); returns the rows per table. */
export async function copyStore(source: Store, target: Store, options: CopyOptions): Promise<Record<Table, number>> {
  if (source.dialect !== 'sqlite') throw new CopyError('the source must be a SQLite store');
  if (target.dialect !== 'postgres') throw new CopyError('the target must be a PostgreSQL database');
  const counts = {} as Record<Table, number>;
  // a read transaction on the source: one consistent snapshot (WAL) even if a server still writes
  await source.db.transaction().execute(async (from) => {
    await target.db.transaction().execute(async (to) => {
      await refuseNonEmpty(to);
      for (const spec of COPY_ORDER) {
        counts[spec.table] = await copyTable(from, to, spec, options.now);
        // the feed's cursor goes on from the last id SQLite ever assigned, pruned rows included:
        // verifiers hold cursors up to it, and a lower id would be skipped by them
        const floor = spec.table === 'deny_list' ? await new DenyListRepository(from).lastAssignedId() : 0;
        if (spec.serial) await sql`select setval(pg_get_serial_sequence(${spec.table}, ${spec.serial}), greatest(coalesce((select max(${sql.ref(spec.serial)}) from ${sql.table(spec.table)}), 0), ${floor}) + 1, false)`.execute(to);
        options.onTable?.(spec.table, counts[spec.table]);
      }
    });
  });
  return counts;
}

async function refuseNonEmpty(db: Kysely<Database>): Promise<void> {
  for (const { table } of COPY_ORDER) {
    const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    const n = Number(row?.n ?? 0);
    if (n > 0) throw new CopyError(`the target database is not empty (${table} has ${n} row${n === 1 ? '' : 's'}): copy into a new, empty database`);
  }
}

async function copyTable(from: Kysely<Database>, to: Kysely<Database>, spec: TableCopy, now: number): Promise<number> {
  const where = spec.where ? sql`and (${spec.where(now)})` : sql``;
  let after = 0;
  let copied = 0;
  for (;;) {
    // keyset pages by SQLite's rowid: every table has one, whatever its primary key
    const { rows } = await sql<Record<string, unknown> & { tollgate_rowid: number }>`select rowid as tollgate_rowid, * from ${sql.table(spec.table)} where rowid > ${after} ${where} order by rowid limit ${PAGE}`.execute(from);
    if (rows.length === 0) return copied;
    after = Number(rows[rows.length - 1]?.tollgate_rowid);
    const values = rows.map(({ tollgate_rowid: _, ...row }) => row as InsertObject<Database, Table>);
    await to.insertInto(spec.table).values(values).execute();
    copied += rows.length;
    if (rows.length < PAGE) return copied;
  }
}
