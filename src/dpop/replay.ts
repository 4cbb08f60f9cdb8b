// RFC 9449 §11.1: a proof's jti is accepted once. The cache is the store's `dpop_jti` table, so a
// proof accepted by one process is refused by every other process on the same store (SQLite
// --workers, a PostgreSQL fleet), at one INSERT per accepted proof and no read. Rows are keyed by
// SHA-256 of (jkt, jti): jtis are chosen by clients, so two keys may well pick the same one, and
// a client-chosen string never reaches the store as is. A row is kept for as long as its proof's
// iat is inside the window; after that the iat check refuses the proof anyway and prune removes it.
import crypto from 'node:crypto';
import { DpopJtiRepository } from '../store/dpopJti.js';
import type { Db } from '../store/database.js';

export class DpopReplayCache {
  private readonly repo: DpopJtiRepository;

  constructor(
    db: Db,
    /** How long after its iat a proof can still be accepted: the window plus the clock tolerance, seconds. */
    private readonly lifetimeSeconds: number,
  ) {
    this.repo = new DpopJtiRepository(db);
  }

  /** True the first time this key's proof with this jti is seen, false on any later use. */
  firstUse(jkt: string, jti: string, iatSeconds: number): Promise<boolean> {
    const key = crypto.createHash('sha256').update(jkt).update('\0').update(jti).digest('base64url');
    return this.repo.insertIfAbsent(key, Math.ceil((iatSeconds + this.lifetimeSeconds) * 1000));
  }

  prune(now: number): Promise<number> {
    return this.repo.pruneExpired(now);
  }
}
