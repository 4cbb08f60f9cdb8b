// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2), in one transaction, top to
// bottom. Every use spends the token and mints its successor; a spent token presented again is a
// replay and revokes the whole family, except:
// - a request that was already in flight when the spend committed lost a race: invalid_grant,
//   the family stays (exactly one winner per token). Within this process "in flight" is known
//   exactly (SpendLedger: the request's arrival and the spend's commit on one sequence, no time
//   slack); for a spend committed by another process (--workers, a fleet) it is judged by the
//   stored spend time, with CROSS_PROCESS_TOLERANCE_MS for the commit that follows it;
// - within the client's retry grace window, the same client presenting it again (its successor
//   still unused) gets the same successor back: a lost response is retried, not punished.
// The first statement is the compare-and-set that spends the token: it takes the write lock
// (SQLite) or the row lock (PostgreSQL), so competing rotations of one token are serialized and the
// loser always reads the winner's committed spend, on another connection or in another worker. A
// check that refuses after a won spend rolls the transaction back: the token stays unspent.
import type { Kysely } from 'kysely';
import { bindingMismatch } from '../../dpop/binding.js';
import { RefreshTokenRepository } from '../../store/refreshTokens.js';
import type { Client, Database, RefreshTokenFamily } from '../../store/schema.js';
import { UserRepository } from '../../store/users.js';
import { RefreshTokenMinter } from '../../tokens/refreshTokens.js';
import { InvalidGrant } from '../errors.js';
import { grantScope } from '../scope.js';
import { type Services, accessHorizon, accessTokenTtl, denySession } from '../services.js';
import { type GrantHandler, type TokenRequest, type TokenResponse, required } from './grant.js';

type Outcome =
  | { kind: 'rotated' | 'retry'; family: RefreshTokenFamily; successor: string; scope: string; roles: string[]; ttl: number }
  | { kind: 'refused'; why: string }
  | { kind: 'unbound'; family: RefreshTokenFamily; why: 'no proof' | 'other key' }
  | { kind: 'replay'; family: RefreshTokenFamily };

export function retryGraceSeconds(services: Services, client: Client): number {
  return client.refresh_grace_seconds ?? services.config.refreshTokens.retryGraceSeconds;
}

/**
 * Spends committed by another process (another worker on the same SQLite file, another instance
 * of a fleet) are not in this process's SpendLedger: the stored `spent_at` (the spender's clock at
 * its compare-and-set) is all there is. The spend commits a little after that stamp (the rest of
 * its transaction, then the COMMIT), so a request that arrived up to this long after `spent_at`
 * may still have been in flight at the commit. Measured with `serve --workers 2` on the 2-core CI
 * machine (README, "Refresh-token rotation"): the compare-and-set to COMMIT time stays under this.
 * Clocks of different hosts must agree to well within it (NTP); workers share one clock.
 */
export const CROSS_PROCESS_TOLERANCE_MS = 5;

export const refreshTokenGrant: GrantHandler = {
  grantType: 'refresh_token',
  async handle(request, services) {
    const presented = required(request.params, 'refresh_token');
    // malformed (no prefix, bad checksum): refused before any lookup
    if (!RefreshTokenMinter.isWellFormed(presented)) throw new InvalidGrant('the refresh token is invalid');
    const hash = RefreshTokenMinter.hash(presented);
    const spend = { won: false };
    let outcome: Outcome;
    try {
      outcome = await services.db.transaction().execute((trx) => rotate(trx, presented, hash, spend, request, services));
    } catch (e) {
      if (spend.won) services.spends.settle(hash, false);
      if (!(e instanceof RolledBack)) throw e;
      outcome = e.outcome;
    }
    // a won spend is committed now; it is settled (stamped) when its successor leaves, below
    try {
      return await respond(outcome, request, services);
    } finally {
      if (spend.won && outcome.kind === 'rotated') services.spends.settle(hash, true, services.clock.now());
    }
  },
};

async function respond(outcome: Outcome, request: TokenRequest, services: Services): Promise<TokenResponse> {
    const { client, ip } = request;
    if (outcome.kind === 'refused') throw new InvalidGrant(outcome.why);
    if (outcome.kind === 'unbound') {
      if (outcome.why === 'other key') services.events.dpopRefused('binding');
      await services.audit.record({ type: 'dpop.binding_mismatch', user_id: outcome.family.user_id, client_id: client.client_id, ip, detail: { sid: outcome.family.id, proof: outcome.why } });
      throw new InvalidGrant(`the refresh token is bound to a DPoP key and the request has ${outcome.why === 'no proof' ? 'no proof' : 'a proof of another key'}`);
    }
    if (outcome.kind === 'replay') {
      await services.denyList.sync();
      services.events.refreshReuse();
      await services.audit.record({ type: 'refresh.reuse_detected', user_id: outcome.family.user_id, client_id: client.client_id, ip, detail: { sid: outcome.family.id } });
      throw new InvalidGrant('the refresh token was already used; its session has been revoked');
    }
    const { family, scope, roles, ttl, successor } = outcome;
    const { token } = await services.accessTokens.issue({ sub: family.user_id, audience: client.audience, clientId: client.client_id, scope, roles, sid: family.id, ttlSeconds: ttl, jkt: request.dpopJkt });
    if (outcome.kind === 'retry') {
      services.events.refreshRetry();
      await services.audit.record({ type: 'refresh.retry', user_id: family.user_id, client_id: client.client_id, ip, detail: { sid: family.id } });
    }
    services.events.tokenIssued('refresh_token');
    return { access_token: token, token_type: request.dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, refresh_token: successor, scope };
}

/** Thrown inside the transaction to undo a won spend when a later check refuses. */
class RolledBack extends Error {
  constructor(readonly outcome: Outcome) {
    super('rolled back');
  }
}

async function rotate(trx: Kysely<Database>, presented: string, hash: string, spend: { won: boolean }, { params, client, receivedAt, arrival, dpopJkt }: TokenRequest, services: Services): Promise<Outcome> {
  const { clock, config, spends } = services;
  const repo = new RefreshTokenRepository(trx);
  const now = clock.now();
  // first statement: the spend itself (see the header); `won` says this request spent it
  const won = await repo.markSpent(hash, now);
  if (won) {
    spend.won = true;
    spends.begin(hash);
  }
  // a refusal after a won spend must not leave the token spent
  const refuse = (why: string): Outcome => {
    if (won) throw new RolledBack({ kind: 'refused', why });
    return { kind: 'refused', why };
  };
  const row = await repo.findWithFamily(hash);
  if (!row) return refuse('the refresh token is invalid');
  const family = row.family;
  // another client's token is never a retry, nor evidence of theft by this client
  if (family.client_id !== client.client_id) return refuse('the refresh token was not issued to this client');
  // RFC 9449 §5: a bound family needs a proof of its key. Checked before anything that spends or
  // revokes (a won spend is rolled back): without the key a thief can neither use nor kill it
  const mismatch = bindingMismatch(family.dpop_jkt, dpopJkt);
  if (mismatch) {
    const unbound: Outcome = { kind: 'unbound', family, why: mismatch };
    if (won) throw new RolledBack(unbound);
    return unbound;
  }
  if (family.revoked_at !== null) return refuse('the refresh token has been revoked');

  const ttl = accessTokenTtl(services, client);
  const successor = services.refreshTokens.successorOf(presented);
  const issue = async (kind: 'rotated' | 'retry'): Promise<Outcome> => {
    const scope = grantScope(params.get('scope'), family.scope, 'the scope originally granted');
    const user = await new UserRepository(trx).enabledWithRoles(family.user_id);
    if (!user || !user.enabled) return refuse('the user is disabled');
    const horizon = accessHorizon(now, ttl);
    // read with the family above; extendAccessExpiry only ever moves it later
    if (family.access_expires_at < horizon.needed) await repo.extendAccessExpiry(family.id, horizon.extendTo);
    return { kind, family, successor, scope, roles: user.roles, ttl };
  };

  const spent = async (spentAt: number): Promise<Outcome> => {
    const grace = retryGraceSeconds(services, client);
    if (grace > 0 && now - spentAt <= grace * 1000) {
      const child = await repo.findToken(RefreshTokenMinter.hash(successor));
      // the successor is the family's only live token: handing it out again keeps the family one line
      if (child && child.spent_at === null) {
        if (child.expires_at <= now) return { kind: 'refused', why: 'the refresh token has expired' };
        return issue('retry');
      }
    }
    // in flight when the spend committed: a lost race, not a replay (it cannot have seen the successor)
    const mine = spends.inFlightAtCommit(hash, arrival, receivedAt);
    const inFlight = mine ?? receivedAt <= spentAt + CROSS_PROCESS_TOLERANCE_MS;
    if (mine === undefined) services.logger.debug({ lateMs: receivedAt - spentAt, inFlight }, 'refresh token spent by another process');
    if (inFlight) return { kind: 'refused', why: 'the refresh token was already used' };
    await repo.revokeFamily(family.id, now, 'refresh token reuse');
    await denySession(services, family, now, trx);
    return { kind: 'replay', family };
  };

  // not ours to spend: it was spent before (by a retry, a concurrent request or a thief)
  if (!won) return spent(row.spent_at ?? now);
  if (row.expires_at <= now || family.expires_at <= now) return refuse('the refresh token has expired');
  const outcome = await issue('rotated');
  const idle = (client.refresh_idle_ttl ?? config.refreshTokens.idleTtlSeconds) * 1000;
  await repo.insertToken({ token_hash: RefreshTokenMinter.hash(successor), family_id: family.id, parent_hash: hash, created_at: now, expires_at: Math.min(now + idle, family.expires_at), spent_at: null });
  return outcome;
}
