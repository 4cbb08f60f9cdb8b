// Table types for Kysely. Times are epoch milliseconds (bigint), booleans are 0/1 integers, so
// the same queries run on SQLite and PostgreSQL.
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

export interface UsersTable {
  id: string; // UUID: the `sub` of the user's tokens
  username: string;
  password_hash: string;
  enabled: number;
  created_at: number;
  updated_at: number;
}

export interface RolesTable {
  name: string;
  created_at: number;
}

export interface UserRolesTable {
  user_id: string;
  role_name: string;
}

export interface ClientsTable {
  client_id: string;
  secret_hash: string | null; // SHA-256 (hex) of the secret; null for public clients
  public: number;
  grants: string; // space-separated grant types
  scope: string; // space-separated allowed scopes
  audience: string;
  access_token_ttl: number | null; // seconds; null: the configured default
  refresh_idle_ttl: number | null;
  refresh_absolute_ttl: number | null;
  refresh_grace_seconds: number | null;
  created_at: number;
  updated_at: number;
  require_dpop: ColumnType<number, number | undefined, number>; // defaults to 0; 1: every token request needs a DPoP proof (RFC 9449 §5.2)
}

export interface RefreshTokenFamiliesTable {
  id: string; // UUID: the `sid` of the family's access tokens
  user_id: string;
  client_id: string;
  scope: string;
  created_at: number;
  expires_at: number; // absolute lifetime
  access_expires_at: number; // the latest `exp` of an access token issued in this family
  revoked_at: number | null;
  revoked_reason: string | null;
  // the family's Token Status List slot (issue 18); absent on families from before it
  status_list: string | null;
  status_idx: number | null;
  dpop_jkt: string | null; // RFC 7638 thumbprint of the DPoP key the family is bound to (RFC 9449 §5)
}

export interface RefreshTokensTable {
  token_hash: string; // SHA-256 (hex); the token itself is never stored
  family_id: string;
  parent_hash: string | null;
  created_at: number;
  expires_at: number; // idle lifetime
  spent_at: number | null;
}

export type KeyState = 'next' | 'active' | 'retired' | 'removed';

export interface SigningKeysTable {
  kid: string;
  alg: string;
  state: KeyState;
  public_jwk: string; // JSON
  private_jwk_enc: string; // AES-256-GCM under the key-encryption key
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  removed_at: number | null;
}

export type DenyType = 'jti' | 'sid' | 'sub' | 'client' | 'kid';

export interface DenyListTable {
  id: Generated<number>; // the feed's cursor
  type: DenyType;
  value: string;
  issued_before: number | null; // epoch seconds, `sub` and `client` entries only
  expires_at: number; // epoch seconds
  created_at: number;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: number;
  type: string;
  username: string | null;
  user_id: string | null;
  client_id: string | null;
  ip: string | null;
  detail: string | null; // JSON, never a secret
}

export interface LoginFailuresTable {
  id: Generated<number>;
  key: string; // "user:<hmac>", "ip:<address>" or "user_ip:<hmac>@<address>" (src/users/throttle.ts)
  at: number;
}

export interface HorizonsTable {
  name: 'access' | 'default_ttl';
  value: number;
}

export interface KnownAddressesTable {
  user_id: string;
  address: string; // an IPv4 address or an IPv6 /64 prefix ("2001:db8:0:1::/64")
  last_success_at: number;
}

export interface StatusListsTable {
  id: string; // opaque: the last segment of `<issuer>/statuslists/<id>`
  position: number; // allocation order
  size: number; // statuses (bits) in the list
  version: number; // bumped in the transaction that changes any of its bits
  created_at: number;
}

export interface StatusSlotsTable {
  list_id: string;
  idx: number;
  user_id: string | null; // null for client_credentials tokens
  client_id: string;
  family_id: string | null; // a refresh family's slot (shared by its access tokens)
  invalid: number; // 1: the status INVALID is published for this index
  expires_at: number; // epoch ms: every token that used the slot has expired (then quarantined)
}

export interface DpopJtiTable {
  key: string; // SHA-256 (base64url) of the proof key's thumbprint and the proof's jti
  expires_at: number; // epoch ms: past it the proof's iat is outside the window anyway
}

export interface Database {
  users: UsersTable;
  roles: RolesTable;
  user_roles: UserRolesTable;
  clients: ClientsTable;
  refresh_token_families: RefreshTokenFamiliesTable;
  refresh_tokens: RefreshTokensTable;
  signing_keys: SigningKeysTable;
  deny_list: DenyListTable;
  audit_events: AuditEventsTable;
  login_failures: LoginFailuresTable;
  horizons: HorizonsTable;
  known_addresses: KnownAddressesTable;
  status_lists: StatusListsTable;
  status_slots: StatusSlotsTable;
  dpop_jti: DpopJtiTable;
}

export type User = Selectable<UsersTable>;
export type Client = Selectable<ClientsTable>;
export type NewClient = Insertable<ClientsTable>;
export type RefreshTokenFamily = Selectable<RefreshTokenFamiliesTable>;
export type NewRefreshTokenFamily = Insertable<RefreshTokenFamiliesTable>;
export type RefreshTokenRow = Selectable<RefreshTokensTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type DenyListRow = Selectable<DenyListTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
