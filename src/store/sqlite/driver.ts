// Kysely's SQLite driver, reworked for several processes on one database file (`serve --workers N`,
// the CLI beside a running server):
// - Transactions start with BEGIN IMMEDIATE: the write lock is taken (or waited for) up front, so a
//   transaction never fails halfway on a lock, and the step retried is BEGIN alone.
// - Group commit: the transactions of one turn of the event loop share a BEGIN IMMEDIATE ... COMMIT,
//   each in a savepoint of its own, and each returns only once that COMMIT has succeeded (see
//   TollgateSqliteDriver).
// The connection, its busy waiting and the order it is handed out in are connection.ts.
import {
  CompiledQuery, type DatabaseConnection, type DatabaseIntrospector, type Dialect, type DialectAdapter, type Driver, type Kysely, type QueryCompiler,
  type QueryResult, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
} from 'kysely';
import { type BusyPolicy, Connection, type StatementSource, Turnstile } from './connection.js';

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
