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
// - Group commit: the transactions of one turn of the event loop share a BEGIN IMMEDIATE ... COMMIT,
//   each in a savepoint of its own, and each returns only once that COMMIT has succeeded (see
//   TollgateSqliteDriver).
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

class Connection {
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
class Turnstile {
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

/** One holder of the connection, from acquireConnection to releaseConnection. */
class Session implements DatabaseConnection {
  /** Inside its own transaction (a savepoint of the open group). */
  inTransaction = false;
  /** The connection went to the next holder already (when this one's transaction ended). */
  handedOff = false;

  constructor(private readonly driver: TollgateSqliteDriver) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute<R>(this, query);
  }

  // eslint-disable-next-line require-yield -- Tollgate never streams
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported');
  }
}

/** How many transactions at most share one COMMIT. */
export const MAX_GROUP = 16;
const MEMBER = 'tollgate_member';

/**
 * Group commit. The transactions of one turn of the event loop share one BEGIN IMMEDIATE ... COMMIT,
 * each inside a savepoint of its own: one that fails rolls back to its savepoint and leaves the
 * others be. A transaction that ends hands the connection on at once, then waits for the group's
 * COMMIT before it returns (a failed one too: its answer may rest on what earlier members wrote),
 * so no caller answers on the strength of a write, or of a read of one, that is not committed; if
 * the COMMIT fails, every member fails with it. The group commits when the turn is over and nobody
 * holds the connection, when it has MAX_GROUP members, or before a statement outside any
 * transaction runs (such a statement never sees uncommitted work). A rotation's COMMIT writes each
 * page it touched to the WAL (24 µs of a 72 µs rotation in better-sqlite3 alone); rotations of
 * one group share the table's last page, the audit pages and the one commit.
 */
class TollgateSqliteDriver implements Driver {
  private readonly connection: Connection;
  private readonly turnstile = new Turnstile();
  /** The open shared transaction: what each member waits on. */
  private group: Array<{ resolve(): void; reject(e: unknown): void }> | undefined;
  private scheduled = false;

  constructor(
    private readonly db: StatementSource,
    policy: BusyPolicy,
  ) {
    this.connection = new Connection(db, policy);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.turnstile.acquire();
    return new Session(this);
  }

  execute<R>(session: Session, query: CompiledQuery): Promise<QueryResult<R>> {
    if (!session.inTransaction && this.group) this.commitGroup();
    return this.connection.executeQuery<R>(query);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const session = connection as Session;
    if (!this.group) {
      await this.connection.executeQuery(CompiledQuery.raw('begin immediate'));
      this.group = [];
    }
    this.connection.run(`savepoint ${MEMBER}`, []);
    session.inTransaction = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const session = connection as Session;
    this.connection.run(`release ${MEMBER}`, []);
    session.inTransaction = false;
    await this.leave(session);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const session = connection as Session;
    // the COMMIT this member waited on failed: the group is gone and the error already given
    if (session.handedOff) return;
    session.inTransaction = false;
    if (!this.db.inTransaction) {
      // SQLite rolled the whole transaction back (a full disk, an I/O error): the group with it
      this.failGroup(new Error('the transaction was rolled back by SQLite'));
      return;
    }
    this.connection.run(`rollback to ${MEMBER}`, []);
    this.connection.run(`release ${MEMBER}`, []);
    // its answer may rest on what earlier members wrote: it waits for their COMMIT as well
    await this.leave(session);
  }

  /** A member's transaction ended: the next holder gets the connection, this one waits for COMMIT. */
  private leave(session: Session): Promise<void> {
    const group = (this.group ??= []);
    const committed = new Promise<void>((resolve, reject) => group.push({ resolve, reject }));
    session.handedOff = true;
    if (group.length >= MAX_GROUP) this.commitGroup();
    else this.scheduleCommit();
    this.turnstile.release();
    return committed;
  }

  /**
   * Commits the group once this turn of the event loop is over, if nobody holds the connection by
   * then (a member that holds it schedules again when it leaves; a statement outside a transaction
   * commits first). A transaction runs start to end in one turn, so the requests read in that turn
   * are the ones that can join it.
   */
  private scheduleCommit(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.group && this.turnstile.idle) this.commitGroup();
    });
  }

  private commitGroup(): void {
    const members = this.group ?? [];
    this.group = undefined;
    try {
      if (this.db.inTransaction) this.connection.run('commit', []);
    } catch (e) {
      if (this.db.inTransaction) this.connection.run('rollback', []);
      for (const m of members) m.reject(e);
      return;
    }
    for (const m of members) m.resolve();
  }

  private failGroup(error: unknown): void {
    const members = this.group ?? [];
    this.group = undefined;
    for (const m of members) m.reject(error);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const session = connection as Session;
    if (session.handedOff) return;
    // a holder that ran nothing: the group goes on to the next, or commits once the turn is over
    if (this.group) this.scheduleCommit();
    this.turnstile.release();
  }

  async destroy(): Promise<void> {
    if (this.group) this.commitGroup();
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
