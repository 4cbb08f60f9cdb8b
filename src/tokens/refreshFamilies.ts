// Refresh-token families: the one owner of a sign-in session's refresh tokens. It starts a family,
// rotates its token (take the row lock, decide with rotation.ts, write), revokes families (RFC 7009,
// reuse detection, a user's or a client's revocation) with their `sid` deny entries, and answers
// introspection. Every use spends the token and mints its successor in one transaction: the first
// statement is the compare-and-set that spends it, which takes the write lock (SQLite) or the row
// lock (PostgreSQL), so competing rotations of one token are serialized and the loser reads the
// winner's committed spend. A check that refuses after a won spend undoes the spend.
import crypto from 'node:crypto';
import type { Audit, AuditEvent } from '../audit/audit.js';
import { type Clock, seconds } from '../clock.js';
import type { Client } from '../clients/client.js';
import type { DenyList, NewDenyEntry } from '../denylist/denyList.js';
import type { Logger } from '../logger.js';
import type { Slot, StatusClaim, StatusLists } from '../statuslist/statusLists.js';
import { type Db, inTransaction } from '../store/database.js';
import { RefreshTokenRepository } from '../store/refreshTokens.js';
import type { RefreshTokenFamily } from '../store/schema.js';
import { RefreshTokenMinter } from './refreshTokens.js';
import { type RefusalReason, type RotationOutcome, type RotationRequest, type Session, accessHorizon, judgeSpent, judgeToken, mayRetry } from './rotation.js';
import { narrowScope } from './scope.js';
import type { SpendLedger } from './spendLedger.js';

/**
 * Spends committed by another process (another worker on the same SQLite file, another instance
 * of a fleet) are not in this process's SpendLedger: the stored `spent_at` (the spender's clock at
 * its compare-and-set) is all there is. The spend commits a little after that stamp (the rest of
 * its transaction, then the COMMIT), so a request that arrived up to this long after `spent_at`
 * may still have been in flight at the commit. Measured with `serve --workers 2` on the 2-core CI
 * machine (README, "Refresh-token rotation"). Clocks of different hosts must agree to well within
 * it (NTP); workers share one clock.
 */
export const CROSS_PROCESS_TOLERANCE_MS = 5;

export type { RotationOutcome, RotationRequest, Session } from './rotation.js';

export interface RefreshFamiliesDeps {
  db: Db;
  clock: Clock;
  minter: RefreshTokenMinter;
  spends: SpendLedger;
  denyList: DenyList;
  audit: Audit;
  /** Seconds verifiers allow past `exp`: a `sid` entry lasts this much past the family's horizon. */
  clockToleranceSeconds: number;
  statusLists: StatusLists;
  logger?: Logger | undefined;
}

const session = (f: RefreshTokenFamily): Session => ({ sid: f.id, userId: f.user_id, clientId: f.client_id });
const slotOf = (f: RefreshTokenFamily): Slot | undefined => (f.status_list !== null && f.status_idx !== null ? { listId: f.status_list, idx: Number(f.status_idx) } : undefined);

export class RefreshFamilies {
  constructor(private readonly deps: RefreshFamiliesDeps) {}

  /** A new family for a user signed in through a client: its first refresh token and its sid. */
  async start(userId: string, client: Client, scope: string, dpopJkt?: string): Promise<{ sid: string; refreshToken: string; status: StatusClaim }> {
    const now = this.deps.clock.now();
    const { accessTokenSeconds, refreshIdleSeconds, refreshAbsoluteSeconds } = client.lifetimes;
    const refreshToken = this.deps.minter.mint();
    const sid = crypto.randomUUID();
    const absolute = refreshAbsoluteSeconds * 1000;
    const slot = await inTransaction(this.deps.db, async (tx) => {
      const repo = new RefreshTokenRepository(tx);
      // the family's status-list slot, in the transaction that writes the family (issue 18)
      const slot = await this.deps.statusLists.familySlot(tx, { id: sid, user_id: userId, client_id: client.id, expires_at: now + absolute });
      await repo.insertFamily({ id: sid, user_id: userId, client_id: client.id, scope, created_at: now, expires_at: now + absolute, access_expires_at: accessHorizon(now, accessTokenSeconds).extendTo, revoked_at: null, revoked_reason: null, status_list: slot.listId, status_idx: slot.idx, dpop_jkt: dpopJkt ?? null });
      await repo.insertToken({ token_hash: RefreshTokenMinter.hash(refreshToken), family_id: sid, parent_hash: null, created_at: now, expires_at: now + Math.min(refreshIdleSeconds * 1000, absolute), spent_at: null });
      return slot;
    });
    return { sid, refreshToken, status: this.deps.statusLists.claim(slot) };
  }

  /** Rotates a presented refresh token (RFC 6749 §6, RFC 9700 §4.14.2). */
  async rotate(request: RotationRequest): Promise<RotationOutcome> {
    const hash = RefreshTokenMinter.hash(request.presented);
    const spend = { won: false };
    let outcome: RotationOutcome;
    try {
      outcome = await inTransaction(this.deps.db, (tx) => this.rotateIn(tx, hash, spend, request));
    } catch (e) {
      if (spend.won) this.deps.spends.settle(hash, false);
      throw e;
    }
    if (outcome.kind === 'replay') await this.deps.denyList.sync();
    if (spend.won && outcome.kind !== 'rotated') this.deps.spends.settle(hash, false);
    if ((outcome.kind === 'rotated' || outcome.kind === 'retry') && !outcome.session.status) {
      // a family from before status lists: each of its tokens gets a slot of its own
      const { sid, userId, clientId } = outcome.session;
      const slot = await this.deps.statusLists.tokenSlot({ user_id: userId, client_id: clientId, family_id: sid }, request.client.lifetimes.accessTokenSeconds);
      return { ...outcome, session: { ...outcome.session, status: this.deps.statusLists.claim(slot) } };
    }
    return outcome;
  }

  /** A won spend's successor is leaving in the response now (SpendLedger: requests after this are replays). */
  released(presented: string): void {
    this.deps.spends.settle(RefreshTokenMinter.hash(presented), true, this.deps.clock.now());
  }

  private async rotateIn(tx: Db, hash: string, spend: { won: boolean }, request: RotationRequest): Promise<RotationOutcome> {
    const { clock, spends, minter } = this.deps;
    const { client } = request;
    const repo = new RefreshTokenRepository(tx);
    const now = clock.now();
    // first statement: the spend itself (see the header)
    const won = await repo.markSpent(hash, now);
    if (won) {
      spend.won = true;
      spends.begin(hash);
    }
    // a refusal after a won spend must not leave the token spent
    const undoSpend = async () => {
      if (won) await repo.unspend(hash, now);
    };
    const refuse = async (reason: RefusalReason): Promise<RotationOutcome> => {
      await undoSpend();
      return { kind: 'refused', reason };
    };
    // one read: the token, its family, the family's user and roles
    const facts = await repo.rotationFacts(hash);
    const row = facts?.token;
    const verdict = judgeToken(row, client.id, request.dpopJkt, won, now);
    if (verdict.kind === 'refuse' || !row) return refuse(verdict.kind === 'refuse' ? verdict.reason : 'unknown');
    if (verdict.kind === 'unbound') {
      await undoSpend();
      return { kind: 'unbound', session: session(row.family), why: verdict.why };
    }
    const family = row.family;
    const successor = minter.successorOf(request.presented);

    const issue = async (kind: 'rotated' | 'retry'): Promise<RotationOutcome> => {
      const narrowed = narrowScope(request.scope, family.scope);
      if ('beyond' in narrowed) {
        await undoSpend();
        return { kind: 'scope_beyond_grant', beyond: narrowed.beyond };
      }
      const user = facts?.user;
      if (!user || !user.enabled) return refuse('disabled');
      const horizon = accessHorizon(now, client.lifetimes.accessTokenSeconds);
      // read with the family above; extendAccessExpiry only ever moves it later
      if (family.access_expires_at < horizon.needed) await repo.extendAccessExpiry(family.id, horizon.extendTo);
      const slot = slotOf(family);
      return { kind, session: { ...session(family), status: slot && this.deps.statusLists.claim(slot) }, successor, scope: narrowed.scope, roles: user.roles };
    };

    if (verdict.kind === 'spent') {
      const retryable = mayRetry(verdict.spentAt, client.lifetimes.retryGraceSeconds, now);
      const child = retryable ? await repo.findToken(RefreshTokenMinter.hash(successor)) : undefined;
      const mine = spends.inFlightAtCommit(hash, request.arrival, request.receivedAt);
      const inFlight = mine ?? request.receivedAt <= verdict.spentAt + CROSS_PROCESS_TOLERANCE_MS;
      if (mine === undefined) this.deps.logger?.debug({ lateMs: request.receivedAt - verdict.spentAt, inFlight }, 'refresh token spent by another process');
      const judged = judgeSpent({ retryable, successor: child, inFlight, now });
      if (judged.kind === 'retry') return issue('retry');
      if (judged.kind === 'refuse') return { kind: 'refused', reason: judged.reason };
      await repo.revokeFamily(family.id, now, 'refresh token reuse');
      await this.denyFamilies([family], now, tx);
      // in the same transaction, as for every revocation: no revoked family without its audit row
      await this.deps.audit.record({ type: 'refresh.reuse_detected', user_id: family.user_id, client_id: client.id, ip: request.ip, detail: { sid: family.id } }, tx);
      return { kind: 'replay', session: session(family) };
    }

    const outcome = await issue('rotated');
    if (outcome.kind !== 'rotated') return outcome;
    const idle = client.lifetimes.refreshIdleSeconds * 1000;
    await repo.insertToken({ token_hash: RefreshTokenMinter.hash(successor), family_id: family.id, parent_hash: hash, created_at: now, expires_at: Math.min(now + idle, family.expires_at), spent_at: null });
    return outcome;
  }

  /**
   * RFC 7009 for a refresh token: revokes its family and denies its sid, the audit row in the same
   * transaction. 'foreign': another client's token (ignored; the answer does not say so).
   */
  async revokeByToken(token: string, clientId: string, audit: Omit<AuditEvent, 'type' | 'user_id' | 'client_id'>): Promise<'unknown' | 'foreign' | 'already' | 'revoked'> {
    if (!RefreshTokenMinter.isWellFormed(token)) return 'unknown';
    const now = this.deps.clock.now();
    const result = await inTransaction(this.deps.db, async (tx) => {
      const repo = new RefreshTokenRepository(tx);
      const row = await repo.findWithFamily(RefreshTokenMinter.hash(token));
      if (!row) return 'unknown' as const;
      if (row.family.client_id !== clientId) return 'foreign' as const;
      // already revoked (by the client, reuse detection or the user's logout): nothing more to deny
      if (!(await repo.revokeFamily(row.family.id, now, 'revoked by client'))) return 'already' as const;
      await this.denyFamilies([row.family], now, tx);
      // in the same transaction: one commit on this hot path, and no revocation without its audit row
      await this.deps.audit.record({ ...audit, type: 'token.revoked', user_id: row.family.user_id, client_id: clientId, detail: { token_type: 'refresh_token', sid: row.family.id } }, tx);
      return 'revoked' as const;
    });
    if (result === 'revoked') await this.deps.denyList.sync();
    return result;
  }

  /** A live refresh token's facts for introspection (RFC 7662), or undefined. */
  async inspect(token: string): Promise<{ scope: string; clientId: string; userId: string; exp: number; iat: number } | undefined> {
    const row = await new RefreshTokenRepository(this.deps.db).live(RefreshTokenMinter.hash(token), this.deps.clock.now());
    if (!row) return undefined;
    return { scope: row.scope, clientId: row.client_id, userId: row.user_id, exp: seconds(Math.min(row.expires_at, row.family_expires_at)), iat: seconds(row.created_at) };
  }

  /** Inside the caller's transaction: revokes every live family of a user; returns how many, and their sid entries. */
  async revokeAllOfUser(userId: string, reason: string, now: number, tx: Db): Promise<{ count: number; entries: NewDenyEntry[] }> {
    const repo = new RefreshTokenRepository(tx);
    const revoked: RefreshTokenFamily[] = [];
    for (const family of await repo.liveFamiliesOfUser(userId, now)) if (await repo.revokeFamily(family.id, now, reason)) revoked.push(family);
    return { count: revoked.length, entries: this.sidEntries(revoked, now) };
  }

  /** Inside the caller's transaction: revokes every family of a client that may still have live tokens. */
  async revokeAllOfClient(clientId: string, reason: string, now: number, tx: Db): Promise<{ count: number; entries: NewDenyEntry[] }> {
    const repo = new RefreshTokenRepository(tx);
    const families = await repo.familiesWithLiveTokensOfClient(clientId, now);
    let count = 0;
    for (const family of families) if (await repo.revokeFamily(family.id, now, reason)) count++;
    return { count, entries: this.sidEntries(families, now) };
  }

  /** Families whose refresh tokens can no longer be used and whose access tokens have all expired. */
  pruneExpired(): Promise<number> {
    return new RefreshTokenRepository(this.deps.db).pruneExpired(this.deps.clock.now());
  }

  /** A revoked family's `sid` is denied until its horizon plus the clock tolerance (nothing once all its access tokens expired). */
  private sidEntries(families: RefreshTokenFamily[], now: number): NewDenyEntry[] {
    return families.flatMap((f) => {
      const expiresAt = Math.ceil(f.access_expires_at / 1000) + this.deps.clockToleranceSeconds;
      return expiresAt > seconds(now) ? [{ type: 'sid' as const, value: f.id, expires_at: expiresAt }] : [];
    });
  }

  private async denyFamilies(families: RefreshTokenFamily[], now: number, tx: Db): Promise<void> {
    await this.deps.denyList.add(this.sidEntries(families, now), tx);
    // the families' status-list indices go INVALID in the same transaction (issue 18)
    for (const f of families) await this.deps.statusLists.revokeFamily(f.id, tx);
  }
}
