import { type Kysely, sql } from 'kysely';
import { prepared } from './prepared.js';
import type { Database, NewRefreshTokenFamily, RefreshTokenFamily, RefreshTokenRow } from './schema.js';

// the refresh_token grant's statements, compiled once (see prepared.ts)
const insertTokenQuery = prepared<RefreshTokenRow, never>(
  ['token_hash', 'family_id', 'parent_hash', 'created_at', 'expires_at', 'spent_at'],
  (db, p) => db.insertInto('refresh_tokens').values(p),
);
// the token with its family; the rotation's read also takes the family's user and roles along
const joinColumns = [
  't.token_hash', 't.family_id', 't.parent_hash', 't.created_at', 't.expires_at', 't.spent_at',
  'f.id as f_id', 'f.user_id as f_user_id', 'f.client_id as f_client_id', 'f.scope as f_scope',
  'f.created_at as f_created_at', 'f.expires_at as f_expires_at', 'f.access_expires_at as f_access_expires_at',
  'f.revoked_at as f_revoked_at', 'f.revoked_reason as f_revoked_reason', 'f.dpop_jkt as f_dpop_jkt',
  // issue 18: the family's status-list slot rides along (no extra read on refresh)
  'f.status_list as f_status_list', 'f.status_idx as f_status_idx',
] as const;
const findWithFamilyQuery = prepared<{ hash: string }, FamilyJoinRow>(['hash'], (db, p) =>
  db.selectFrom('refresh_tokens as t').innerJoin('refresh_token_families as f', 'f.id', 't.family_id').select(joinColumns).where('t.token_hash', '=', p.hash),
);
// Role names are joined with a character they cannot hold (users.ts: letters, digits, _ . : -).
// One row with the roles folded in costs less than a row per role, each repeating the token and
// its family (measured: 9.5 µs against 12, and 11.5 for two statements). string_agg: PostgreSQL,
// and SQLite since 3.44.
const ROLE_SEPARATOR = '\u001f';
const rotationFactsQuery = prepared<{ hash: string }, FamilyJoinRow & { u_enabled: number | null; u_roles: string | null }>(['hash'], (db, p) =>
  db
    .selectFrom('refresh_tokens as t')
    .innerJoin('refresh_token_families as f', 'f.id', 't.family_id')
    .leftJoin('users as u', 'u.id', 'f.user_id')
    .select([
      ...joinColumns,
      'u.enabled as u_enabled',
      sql<string | null>`(select string_agg(r.role_name, ${sql.lit(ROLE_SEPARATOR)} order by r.role_name) from user_roles as r where r.user_id = u.id)`.as('u_roles'),
    ])
    .where('t.token_hash', '=', p.hash),
);
const markSpentQuery = prepared<{ hash: string; at: number }, never>(['hash', 'at'], (db, p) =>
  db.updateTable('refresh_tokens').set({ spent_at: p.at }).where('token_hash', '=', p.hash).where('spent_at', 'is', null),
);
const unspendQuery = prepared<{ hash: string; at: number }, never>(['hash', 'at'], (db, p) =>
  db.updateTable('refresh_tokens').set({ spent_at: sql.lit(null) }).where('token_hash', '=', p.hash).where('spent_at', '=', p.at),
);
const extendAccessExpiryQuery = prepared<{ id: string; exp: number }, never>(['id', 'exp'], (db, p) =>
  db.updateTable('refresh_token_families').set({ access_expires_at: p.exp }).where('id', '=', p.id).where('access_expires_at', '<', p.exp),
);
// the revocation path (RFC 7009, reuse detection)
const revokeFamilyQuery = prepared<{ id: string; at: number; reason: string }, never>(['id', 'at', 'reason'], (db, p) =>
  db.updateTable('refresh_token_families').set({ revoked_at: p.at, revoked_reason: p.reason }).where('id', '=', p.id).where('revoked_at', 'is', null),
);
// introspection (RFC 7662): a live token's facts only, the liveness judged in the statement
const liveTokenQuery = prepared<{ hash: string; now: number }, LiveRefreshToken>(['hash', 'now'], (db, p) =>
  db
    .selectFrom('refresh_tokens as t')
    .innerJoin('refresh_token_families as f', 'f.id', 't.family_id')
    .select(['f.scope', 'f.client_id', 'f.user_id', 't.created_at', 't.expires_at', 'f.expires_at as family_expires_at'])
    .where('t.token_hash', '=', p.hash)
    .where('t.spent_at', 'is', null)
    .where('f.revoked_at', 'is', null)
    .where('t.expires_at', '>', p.now)
    .where('f.expires_at', '>', p.now),
);
const findTokenQuery = prepared<{ hash: string }, RefreshTokenRow>(['hash'], (db, p) => db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', p.hash));

interface FamilyJoinRow extends RefreshTokenRow {
  f_id: string;
  f_user_id: string;
  f_client_id: string;
  f_scope: string;
  f_created_at: number;
  f_expires_at: number;
  f_access_expires_at: number;
  f_revoked_at: number | null;
  f_revoked_reason: string | null;
  f_status_list: string | null;
  f_status_idx: number | null;
  f_dpop_jkt: string | null;
}

/** An unspent, unrevoked, unexpired refresh token, as introspection shows it (times in ms). */
export interface LiveRefreshToken {
  scope: string;
  client_id: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  family_expires_at: number;
}

export type TokenWithFamily = RefreshTokenRow & { family: RefreshTokenFamily };

function withFamily(r: FamilyJoinRow): TokenWithFamily {
  return {
    token_hash: r.token_hash, family_id: r.family_id, parent_hash: r.parent_hash, created_at: r.created_at,
    expires_at: r.expires_at, spent_at: r.spent_at,
    family: {
      id: r.f_id, user_id: r.f_user_id, client_id: r.f_client_id, scope: r.f_scope, created_at: r.f_created_at,
      expires_at: r.f_expires_at, access_expires_at: r.f_access_expires_at, revoked_at: r.f_revoked_at, revoked_reason: r.f_revoked_reason,
      status_list: r.f_status_list, status_idx: r.f_status_idx,
      dpop_jkt: r.f_dpop_jkt,
    },
  };
}

export class RefreshTokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertFamily(family: NewRefreshTokenFamily): Promise<void> {
    await this.db.insertInto('refresh_token_families').values(family).execute();
  }

  async insertToken(token: RefreshTokenRow): Promise<void> {
    await insertTokenQuery(this.db, token);
  }

  async findToken(hash: string): Promise<RefreshTokenRow | undefined> {
    return (await findTokenQuery(this.db, { hash })).rows[0];
  }

  /** The token with its family, in one round trip. */
  async findWithFamily(hash: string): Promise<TokenWithFamily | undefined> {
    const [r] = (await findWithFamilyQuery(this.db, { hash })).rows;
    return r && withFamily(r);
  }

  /** The token if it is live at `now` (unspent, its family unrevoked, neither expired): 6 columns, not the 18 of findWithFamily. */
  async live(hash: string, now: number): Promise<LiveRefreshToken | undefined> {
    const [r] = (await liveTokenQuery(this.db, { hash, now })).rows;
    return r;
  }

  /**
   * The rotation's read, in one round trip: the token with its family, and the family's user
   * (whether enabled, and their roles; undefined when the user is gone).
   */
  async rotationFacts(hash: string): Promise<{ token: TokenWithFamily; user: { enabled: boolean; roles: string[] } | undefined } | undefined> {
    const [r] = (await rotationFactsQuery(this.db, { hash })).rows;
    if (!r) return undefined;
    const user = r.u_enabled === null ? undefined : { enabled: Number(r.u_enabled) === 1, roles: r.u_roles ? r.u_roles.split(ROLE_SEPARATOR) : [] };
    return { token: withFamily(r), user };
  }

  /** Compare-and-set: marks the token spent unless someone else did first (one winner per token). */
  async markSpent(hash: string, at: number): Promise<boolean> {
    const r = await markSpentQuery(this.db, { hash, at });
    return Number(r.numAffectedRows) === 1;
  }

  /** Undoes this request's own spend (a check after the compare-and-set refused the rotation). */
  async unspend(hash: string, at: number): Promise<void> {
    await unspendQuery(this.db, { hash, at });
  }

  async extendAccessExpiry(familyId: string, exp: number): Promise<void> {
    await extendAccessExpiryQuery(this.db, { id: familyId, exp });
  }

  /** Revokes a family unless already revoked; true when this call revoked it. */
  async revokeFamily(id: string, at: number, reason: string): Promise<boolean> {
    const r = await revokeFamilyQuery(this.db, { id, at, reason });
    return Number(r.numAffectedRows) === 1;
  }

  liveFamiliesOfUser(userId: string, now: number): Promise<RefreshTokenFamily[]> {
    return this.db.selectFrom('refresh_token_families').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).where('expires_at', '>', now).execute();
  }

  /** The client's families that are unrevoked or may still have unexpired access tokens. */
  familiesWithLiveTokensOfClient(clientId: string, now: number): Promise<RefreshTokenFamily[]> {
    return this.db
      .selectFrom('refresh_token_families')
      .selectAll()
      .where('client_id', '=', clientId)
      .where((eb) => eb.or([eb('expires_at', '>', now), eb('access_expires_at', '>', now)]))
      .execute();
  }

  /** Families whose refresh tokens can no longer be used and whose access tokens have all expired. */
  async pruneExpired(now: number): Promise<number> {
    const r = await this.db.deleteFrom('refresh_token_families').where('expires_at', '<', now).where('access_expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
