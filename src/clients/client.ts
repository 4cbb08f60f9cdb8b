// A client as the protocol sees it: its row turned into a domain value once, with every per-client
// setting resolved against the configured defaults (a null lifetime in the store means "the
// default"), so no request parses `grants` or looks up a default again.
import type { Client as ClientRow } from '../store/schema.js';

export interface ClientLifetimes {
  accessTokenSeconds: number;
  refreshIdleSeconds: number;
  refreshAbsoluteSeconds: number;
  /** The refresh-token retry grace window (0: strict). */
  retryGraceSeconds: number;
}

export interface Client {
  readonly id: string;
  readonly isPublic: boolean;
  readonly grants: ReadonlySet<string>;
  /** The scopes it may be granted, space-separated. */
  readonly scope: string;
  readonly audience: string;
  readonly lifetimes: Readonly<ClientLifetimes>;
  /** SHA-256 (hex) of the secret; null for a public client. */
  readonly secretHash: string | null;
  /** Every token request must carry a DPoP proof (RFC 9449 §5.2 dpop_bound_access_tokens). */
  readonly requireDpop: boolean;
}

export type ClientDefaults = ClientLifetimes;

export function toClient(row: ClientRow, defaults: ClientDefaults): Client {
  return {
    id: row.client_id,
    isPublic: row.public === 1,
    grants: new Set(row.grants.split(' ').filter(Boolean)),
    scope: row.scope,
    audience: row.audience,
    lifetimes: {
      accessTokenSeconds: row.access_token_ttl ?? defaults.accessTokenSeconds,
      refreshIdleSeconds: row.refresh_idle_ttl ?? defaults.refreshIdleSeconds,
      refreshAbsoluteSeconds: row.refresh_absolute_ttl ?? defaults.refreshAbsoluteSeconds,
      retryGraceSeconds: row.refresh_grace_seconds ?? defaults.retryGraceSeconds,
    },
    secretHash: row.secret_hash,
    requireDpop: row.require_dpop === 1,
  };
}
