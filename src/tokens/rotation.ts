// The decisions of a refresh-token rotation (RFC 6749 §6, RFC 9700 §4.14.2), as pure functions of
// what the store and this process know: no I/O, no exceptions. RefreshFamilies gathers the facts
// under the row lock, asks these, and writes what they decide.
import type { RefreshTokenFamily, RefreshTokenRow } from '../store/schema.js';
import type { Client } from '../clients/client.js';
import type { StatusClaim } from '../statuslist/statusLists.js';
import { bindingMismatch } from './dpopBinding.js';
import type { Arrival } from './spendLedger.js';

/** Why a rotation was refused: for the log and the audit trail, never for the client. */
export type RefusalReason = 'unknown' | 'foreign' | 'revoked' | 'expired' | 'disabled' | 'raced';

export type TokenVerdict =
  | { kind: 'refuse'; reason: RefusalReason }
  /** RFC 9449 §5: the family is bound to a DPoP key and the request has no proof of it. */
  | { kind: 'unbound'; why: 'no proof' | 'other key' }
  /** This request spent it: rotate. */
  | { kind: 'fresh' }
  /** Spent before (a retry, a concurrent request, or a thief). */
  | { kind: 'spent'; spentAt: number };

/** The presented token against its row: whose it is, whether it still lives, who spent it. */
export function judgeToken(row: (RefreshTokenRow & { family: RefreshTokenFamily }) | undefined, clientId: string, dpopJkt: string | undefined, won: boolean, now: number): TokenVerdict {
  if (!row) return { kind: 'refuse', reason: 'unknown' };
  // another client's token is never a retry, nor evidence of theft by this client
  if (row.family.client_id !== clientId) return { kind: 'refuse', reason: 'foreign' };
  // before anything that spends or revokes: without the key a thief can neither use nor kill it
  const mismatch = bindingMismatch(row.family.dpop_jkt, dpopJkt);
  if (mismatch) return { kind: 'unbound', why: mismatch };
  if (row.family.revoked_at !== null) return { kind: 'refuse', reason: 'revoked' };
  if (!won) return { kind: 'spent', spentAt: row.spent_at ?? now };
  if (row.expires_at <= now || row.family.expires_at <= now) return { kind: 'refuse', reason: 'expired' };
  return { kind: 'fresh' };
}

/** Whether a spent token's presentation may be a retry: within the client's grace window of the spend. */
export function mayRetry(spentAt: number, graceSeconds: number, now: number): boolean {
  return graceSeconds > 0 && now - spentAt <= graceSeconds * 1000;
}

export type SpentVerdict = { kind: 'retry' } | { kind: 'refuse'; reason: RefusalReason } | { kind: 'replay' };

/**
 * A spent token presented again: the same successor again while it is the family's unused live
 * token and the grace window holds; else a lost race when the request was in flight as the spend
 * committed; else a replay.
 */
export function judgeSpent(opts: { retryable: boolean; successor: RefreshTokenRow | undefined; inFlight: boolean; now: number }): SpentVerdict {
  const { retryable, successor, inFlight, now } = opts;
  if (retryable && successor && successor.spent_at === null) return successor.expires_at <= now ? { kind: 'refuse', reason: 'expired' } : { kind: 'retry' };
  return inFlight ? { kind: 'refuse', reason: 'raced' } : { kind: 'replay' };
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


export interface Session {
  /** The family id: the `sid` of its access tokens. */
  sid: string;
  userId: string;
  clientId: string;
  /** The `status` claim of the family's access tokens (Token Status List, issue 18). */
  status?: StatusClaim | undefined;
}

export interface RotationRequest {
  presented: string;
  client: Client;
  /** The scope asked for (already parsed), or undefined for all that was granted. */
  scope: readonly string[] | undefined;
  arrival: Arrival;
  /** Clock ms of the request's arrival. */
  receivedAt: number;
  /** The client's address, for the audit row of a replay. */
  ip: string | undefined;
  /** The thumbprint of the request's DPoP proof key (RFC 9449), if it sent a valid proof. */
  dpopJkt?: string | undefined;
}

export type RotationOutcome =
  | { kind: 'rotated' | 'retry'; session: Session; successor: string; scope: string; roles: string[] }
  | { kind: 'refused'; reason: RefusalReason }
  | { kind: 'scope_beyond_grant'; beyond: string[] }
  /** RFC 9449 §5: bound to a DPoP key, presented without a proof of it; nothing spent or revoked. */
  | { kind: 'unbound'; session: Session; why: 'no proof' | 'other key' }
  | { kind: 'replay'; session: Session };
