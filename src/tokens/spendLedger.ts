// Which refresh-token spends this process committed, and when, on one sequence shared with the
// arrival of requests. RFC 9700 §4.14.2 wants every presentation of a spent token treated as a
// replay; the only exception Tollgate makes at grace 0 is a request that was already in flight
// when the spend committed (a lost race: the client cannot have seen the successor yet). Within a
// process that is known exactly, without any time slack: a request is stamped when Node hands it
// over (before routing or body parsing), a spend when its committed successor leaves in the
// response (before that moment nobody can hold the successor), both from one counter and the
// clock; the comparison is exact, up to the clock's millisecond. Spends made by another process
// (`serve --workers N`, a fleet) are judged by their stored time instead (refreshFamilies.ts).

/** A request's place in the sequence, stamped at arrival. */
export type Arrival = number;

/**
 * Enough entries for any request still waiting on the store: 10,000 spends are 1.4 s at the
 * fastest refresh rate measured (7k/s), where a grant's p99 is under 50 ms. Older spends fall back
 * to their stored time, as another process's do. An entry holds about 150 bytes of heap; 50,000
 * held 7.5 MB (issue 19: peak RSS).
 */
const MAX_COMMITTED = 10_000;

export class SpendLedger {
  private seq = 0;
  private readonly pending = new Set<string>();
  private readonly committed = new Map<string, { seq: number; at: number }>();

  /** Stamps a request as it arrives. */
  arrival(): Arrival {
    return ++this.seq;
  }

  /** A spend this process won, not yet committed. */
  begin(tokenHash: string): void {
    this.pending.add(tokenHash);
  }

  /**
   * The spend's transaction rolled back (forgotten), or it committed and its successor is leaving
   * now (stamped with the sequence and the clock: `at`, ms).
   */
  settle(tokenHash: string, committed: boolean, at = 0): void {
    this.pending.delete(tokenHash);
    if (!committed) return;
    this.committed.set(tokenHash, { seq: ++this.seq, at });
    if (this.committed.size > MAX_COMMITTED) {
      const oldest = this.committed.keys().next();
      if (!oldest.done) this.committed.delete(oldest.value);
    }
  }

  /**
   * Whether a request that arrived at `arrival` was in flight when this process's spend of the
   * token committed: true (a lost race), false (it arrived after: a replay), or undefined when this
   * process did not spend it (or forgot), and the caller must judge by the stored spend time.
   */
  inFlightAtCommit(tokenHash: string, arrival: Arrival, receivedAt: number): boolean | undefined {
    // not committed yet: whoever asks is certainly in flight (it cannot have seen the successor)
    if (this.pending.has(tokenHash)) return true;
    const spend = this.committed.get(tokenHash);
    if (spend === undefined) return undefined;
    // stamped before the successor left; or within the same clock millisecond, the resolution of
    // every time Tollgate keeps (a request 1 ms later is a replay)
    return arrival < spend.seq || receivedAt <= spend.at;
  }
}
