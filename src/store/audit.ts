import type { Insertable, Kysely } from 'kysely';
import { prepared } from './prepared.js';
import type { AuditEventRow, AuditEventsTable, Database } from './schema.js';

type AuditInsert = Required<Omit<Insertable<AuditEventsTable>, 'id'>>;

// on the revocation and sign-in paths: compiled once (see prepared.ts)
const insertQuery = prepared<AuditInsert, never>(['at', 'type', 'username', 'user_id', 'client_id', 'ip', 'detail'], (db, p) => db.insertInto('audit_events').values(p));

export interface NewAuditEvent {
  type: string;
  username?: string | null | undefined;
  user_id?: string | null | undefined;
  client_id?: string | null | undefined;
  ip?: string | null | undefined;
  detail?: Record<string, unknown> | undefined;
}

export interface AuditQuery {
  user?: string | undefined;
  type?: string | undefined;
  since?: number | undefined;
  limit?: number | undefined;
}

export class AuditRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(event: NewAuditEvent, at: number): Promise<void> {
    await insertQuery(this.db, {
      at,
      type: event.type,
      username: event.username ?? null,
      user_id: event.user_id ?? null,
      client_id: event.client_id ?? null,
      ip: event.ip ?? null,
      detail: event.detail ? JSON.stringify(event.detail) : null,
    });
  }

  query(q: AuditQuery): Promise<AuditEventRow[]> {
    let query = this.db.selectFrom('audit_events').selectAll();
    if (q.user) query = query.where((eb) => eb.or([eb('username', '=', q.user as string), eb('user_id', '=', q.user as string)]));
    if (q.type) {
      // a prefix match by substr, not LIKE: `_` and `%` in a type are literal, and LIKE's case
      // rules differ (SQLite folds ASCII case, PostgreSQL does not)
      const prefix = q.type.slice(0, -1);
      query = q.type.endsWith('.*') ? query.where((eb) => eb(eb.fn('substr', [eb.ref('type'), eb.lit(1), eb.lit(prefix.length)]), '=', prefix)) : query.where('type', '=', q.type);
    }
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    return query.orderBy('id').limit(q.limit ?? 10000).execute();
  }
}
