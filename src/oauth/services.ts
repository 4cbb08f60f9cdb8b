// What the protocol layer needs, passed in (no globals): built once by createServices().
import type { Kysely } from 'kysely';
import type { Audit } from '../audit/audit.js';
import type { ClientService } from '../clients/clients.js';
import { type Clock, seconds } from '../clock.js';
import type { Config } from '../config.js';
import type { DenyList } from '../denylist/denyList.js';
import type { DpopProofs } from '../dpop/proof.js';
import type { KeyManager } from '../keys/keyManager.js';
import type { Keyring } from '../keys/keyring.js';
import type { Logger } from '../logger.js';
import type { Database, Client, RefreshTokenFamily } from '../store/schema.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import type { AccessTokens } from '../tokens/accessTokens.js';
import type { RefreshTokenMinter } from '../tokens/refreshTokens.js';
import type { SpendLedger } from '../tokens/spendLedger.js';
import type { PasswordHasher } from '../users/passwords.js';
import type { LoginThrottle } from '../users/throttle.js';
import type { UserService } from '../users/users.js';

/** Counters the protocol layer reports; the metrics module implements them (no-ops by default). */
export interface ProtocolEvents {
  tokenIssued(grant: string): void;
  refreshReuse(): void;
  refreshRetry(): void;
  revoked(kind: 'access_token' | 'refresh_token'): void;
  /** A DPoP proof refused at the token endpoint, by the check that failed (a bounded set). */
  dpopRefused(reason: string): void;
}

export const noEvents: ProtocolEvents = { tokenIssued() {}, refreshReuse() {}, refreshRetry() {}, revoked() {}, dpopRefused() {} };

export interface Services {
  config: Config;
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  audit: Audit;
  keys: KeyManager;
  keyring: Keyring;
  accessTokens: AccessTokens;
  refreshTokens: RefreshTokenMinter;
  /** Refresh-token spends this process committed, and request arrivals, on one sequence. */
  spends: SpendLedger;
  denyList: DenyList;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  users: UserService;
  clients: ClientService;
  events: ProtocolEvents;
  /** When every access token issued so far has expired: how long an entry denying them all lasts. */
  horizon: AccessHorizon;
  /** RFC 9449 proofs at the token endpoint. */
  dpop: DpopProofs;
}

export function accessTokenTtl(services: Services, client: Client): number {
  return client.access_token_ttl ?? services.config.accessTokens.ttlSeconds;
}

/**
 * A family's `access_expires_at` bounds the `exp` of every access token issued from it: a revoked
 * session's `sid` deny entry lasts until then, and pruning waits for it. It is written one TTL
 * ahead of the token being issued, so a session refreshing every TTL writes it on every other
 * rotation at most, not on each. The price: a deny entry may outlive the session's last access
 * token by up to one TTL (minutes), which INTERFACE.md's "when the entry stops mattering" allows.
 */
export function accessHorizon(now: number, ttlSeconds: number): { needed: number; extendTo: number } {
  return { needed: now + ttlSeconds * 1000, extendTo: now + 2 * ttlSeconds * 1000 };
}

/**
 * A revoked family's `sid` goes on the deny list until its horizon (accessHorizon) plus the clock
 * tolerance; nothing when every access token it issued has already expired. Inside the caller's
 * transaction, so the entry commits with the revocation.
 */
export async function denySession(services: Services, family: RefreshTokenFamily, now: number, trx: Kysely<Database>): Promise<void> {
  const expiresAt = Math.ceil(family.access_expires_at / 1000) + services.config.accessTokens.clockToleranceSeconds;
  if (expiresAt > seconds(now)) await services.denyList.add([{ type: 'sid', value: family.id, expires_at: expiresAt }], trx);
}
