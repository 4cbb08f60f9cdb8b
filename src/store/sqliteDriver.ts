// Kysely's SQLite driver, reworked for several processes on one database file (`serve --workers N`,
// the CLI beside a running server):
// - SQLite's own busy handler sleeps the whole thread, 1 ms at first and longer after: with two
//   workers writing, every collision stopped a worker's event loop. Here busy_timeout is 0 and a
//   busy database is waited for between turns of the event loop (which keeps reading requests and
//   answering those that need no database), retrying the same atomic step until the configured
//   busy timeout has passed.
// - Transactions start with BEGIN IMMEDIATE: the write lock is taken (or waited for) up front, so a
//   transaction never fails halfway on a lock, and the step retried is BEGIN alone.
// - The connection is handed out in arrival order; Kysely's mutex woke every waiter on each
//   release (fifty requests queued: fifty wake-ups per statement).
import type SQLite from 'better-sqlite3';
import {
  CompiledQuery, type DatabaseConnection, type DatabaseIntrospector, type Dialect, type DialectAdapter, type Driver, type Kysely, type QueryCompiler,
  type QueryResult, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
} from 'kysely';

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

class Connection implements DatabaseConnection {
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

  // eslint-disable-next-line require-yield -- Tollgate never streams
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported');
  }
}

/** A first-come, first-served lock on the one connection. */
class Turnstile {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

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

class TollgateSqliteDriver implements Driver {
  private readonly connection: Connection;
  private readonly turnstile = new Turnstile();

  constructor(
    private readonly db: StatementSource,
    policy: BusyPolicy,
  ) {
    this.connection = new Connection(db, policy);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.turnstile.acquire();
    return this.connection;
  }

  async beginTransaction(): Promise<void> {
    await this.connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(): Promise<void> {
    this.connection.run('commit', []);
  }

  async rollbackTransaction(): Promise<void> {
    // SQLite may have rolled back already (a failed COMMIT on a full disk, an I/O error)
    if (this.db.inTransaction) this.connection.run('rollback', []);
  }

  async releaseConnection(): Promise<void> {
    this.turnstile.release();
  }

  async destroy(): Promise<void> {
    this.db.close();
  }
}

/** Kysely's SQLite dialect with the driver above. */
export class TollgateSqliteDialect implements Dialect {
  constructor(
    private readonly db: StatementSource,
    private readonly policy: BusyPolicy,
  ) {}

  createDriver(): Driver {
    return new TollgateSqliteDriver(this.db, this.policy);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's own signature
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
