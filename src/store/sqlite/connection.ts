// The one SQLite connection a process's requests share, with several processes on the file
// (`serve --workers N`, the CLI beside a running server):
// - SQLite's own busy handler sleeps the whole thread, 1 ms at first and longer after: with two
//   workers writing, every collision stopped a worker's event loop. Here busy_timeout is 0 and a
//   busy database is waited for between turns of the event loop (which keeps reading requests and
//   answering those that need no database), retrying the same atomic step until the configured
//   busy timeout has passed.
// - The connection is handed out in arrival order; Kysely's mutex woke every waiter on each
//   release (fifty requests queued: fifty wake-ups per statement).
// The driver that runs transactions on it (BEGIN IMMEDIATE, group commit) is driver.ts.
import type SQLite from 'better-sqlite3';
import type { CompiledQuery, QueryResult } from 'kysely';

/** The statements' source: better-sqlite3, or a wrapper that caches its prepared statements. */
export interface StatementSource {
  prepare(sql: string): Pick<SQLite.Statement, 'reader' | 'all' | 'run'>;
  /** Whether a transaction is open on the connection (SQLite's own answer). */
  readonly inTransaction: boolean;
  close(): void;
}

export interface BusyPolicy {
  /** How long a busy database is waited for before the statement fails (SQLITE_BUSY). */
  timeoutMs: number;
}

export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_'));
}

/** How long a waiter tries on every turn of the event loop before it backs off to timers. */
const EAGER_MS = 20;
/** The nap between two eager tries. */
const NAP_MS = 0.05;
const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits until the next try. Another worker holds the lock for a run of short transactions and
 * takes it again microseconds after each commit, so a waiter that slept a millisecond (SQLite's
 * busy handler sleeps 1 ms, then longer) would find it taken almost every time. For EAGER_MS it
 * naps 50 µs (not spinning: the CPU goes to the holder) and tries again on the next turn of the
 * event loop, which meanwhile reads requests and answers those that need no database; after that
 * it sleeps a few milliseconds between tries (a long transaction, a checkpoint, the CLI).
 * Measured with `serve --workers 2` (refresh grants): spinning 4,700/s, napping 5,200/s.
 */
function pause(waitedMs: number, attempt: number): Promise<void> {
  if (waitedMs < EAGER_MS) {
    Atomics.wait(napCell, 0, 0, NAP_MS);
    return new Promise((resolve) => setImmediate(resolve));
  }
  return new Promise((resolve) => setTimeout(resolve, Math.min(attempt, 5)));
}

/** Runs `step` (one atomic statement) until it is not refused as busy, or the timeout has passed. */
async function whenFree<T>(step: () => T, policy: BusyPolicy): Promise<T> {
  let started: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let waited: number;
    try {
      return step();
    } catch (e) {
      if (!isBusy(e)) throw e;
      const now = performance.now();
      started ??= now;
      waited = now - started;
      if (waited >= policy.timeoutMs) throw e;
    }
    await pause(waited, attempt);
  }
}

/** Runs statements on the connection; one outside a transaction waits out a busy database. */
export class Connection {
  constructor(
    private readonly db: StatementSource,
    private readonly policy: BusyPolicy,
  ) {}

  run<R>(sql: string, parameters: readonly unknown[]): QueryResult<R> {
    const stmt = this.db.prepare(sql);
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] };
    const { changes, lastInsertRowid } = stmt.run(parameters);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  async executeQuery<R>({ sql, parameters }: CompiledQuery): Promise<QueryResult<R>> {
    // inside BEGIN IMMEDIATE the write lock is ours; outside, a statement is its own transaction
    // and retrying it whole is safe
    if (!this.db.inTransaction) return whenFree(() => this.run<R>(sql, parameters), this.policy);
    return this.run<R>(sql, parameters);
  }
}

/** A first-come, first-served lock on the one connection. */
export class Turnstile {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  get idle(): boolean {
    return !this.busy;
  }

  acquire(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }
}
