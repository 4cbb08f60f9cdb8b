// The feed: every deny-list entry in cursor (id) order. The table is the source of truth; each
// process pulls what is new after its cursor into memory (entries written by the CLI or another
// worker arrive within one sync interval, or at once on a PostgreSQL NOTIFY), hands each entry to
// the index and pushes the live ones to its SSE subscribers.
import { type Clock, seconds } from '../clock.js';
import { DenyListRepository } from '../store/denyList.js';
import type { DenyListRow } from '../store/schema.js';
import { type FeedEntry, type FeedEvent, PAGE, toFeedEntry } from './entries.js';
import type { Db } from '../store/database.js';

export interface LoggedEntry {
  id: number;
  entry: FeedEntry;
}

export interface FeedDeps {
  db: Db;
  clock: Clock;
  /** Called with every row pulled, expired or not, before subscribers hear of it. */
  remember(row: DenyListRow): void;
}

export class Feed {
  private head = 0;
  // every entry pulled, in cursor order: GET /deny-list pages are served from here, not the table
  private log: LoggedEntry[] = [];
  private changes = 0;
  private syncing: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private again = false;
  private readonly subscribers = new Set<(events: FeedEvent[]) => void>();

  constructor(private readonly deps: FeedDeps) {}

  /** The id of the newest entry pulled (0: none yet). */
  get cursor(): number {
    return this.head;
  }

  /** Bumped whenever `entries` changes: what is rendered from them can be cached under it. */
  get version(): number {
    return this.changes;
  }

  get entries(): readonly LoggedEntry[] {
    return this.log;
  }

  /**
   * Pulls entries newer than the cursor into memory and pushes them to subscribers. Coalesces
   * concurrent calls: every call made before a pull starts shares that pull, which starts on the
   * next turn of the event loop, so it still sees everything committed before any of them was made.
   * Under load, the requests one turn of the event loop reads (GET /deny-list pages sync first)
   * then cost one query between them, not one each.
   */
  sync(): Promise<void> {
    if (!this.queued) {
      this.queued = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.queued = undefined;
        return this.pullAll();
      });
    }
    return this.queued;
  }

  private pullAll(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.again = false;
          await this.pull();
        } while (this.again);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private async pull(): Promise<void> {
    const repo = new DenyListRepository(this.deps.db);
    for (;;) {
      const rows = await repo.allAfter(this.head, PAGE);
      if (rows.length === 0) return;
      const now = seconds(this.deps.clock.now());
      const events: FeedEvent[] = [];
      for (const row of rows) {
        this.deps.remember(row);
        const entry = toFeedEntry(row);
        this.log.push({ id: Number(row.id), entry });
        if (entry.expires_at > now) events.push({ cursor: String(row.id), entry });
      }
      this.head = Number(rows[rows.length - 1]?.id ?? this.head);
      this.changes++;
      if (events.length > 0) for (const s of this.subscribers) s(events);
      if (rows.length < PAGE) return;
    }
  }

  /**
   * A cursor beyond the newest entry (INTERFACE.md: 400 invalid_request). Such a cursor came from
   * another store (a database recreated or restored from an older backup) or was made up: an empty
   * page for it would look like "nothing new" while every revocation up to that id went unseen.
   * The newest entry is the highest id ever assigned, including entries expired and pruned since,
   * so a cursor that names a pruned entry stays valid and a cursor equal to the head is fine. The
   * in-memory cursor answers nearly always (after a sync: entries another process just wrote
   * count); the store is asked only when the cursor is beyond it, e.g. in a fresh process whose
   * table was pruned empty.
   */
  async isPastHead(after: number): Promise<boolean> {
    if (after <= this.head) return false;
    await this.sync();
    if (after <= this.head) return false;
    return after > (await new DenyListRepository(this.deps.db).lastAssignedId());
  }

  /** Live entries after a cursor as events, each with its own cursor, read from the store (the SSE catch-up). */
  async events(after: number): Promise<FeedEvent[]> {
    const rows = await new DenyListRepository(this.deps.db).after(after, seconds(this.deps.clock.now()), PAGE);
    return rows.map((row) => ({ cursor: String(row.id), entry: toFeedEntry(row) }));
  }

  subscribe(listener: (events: FeedEvent[]) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  /** Drops entries expired at `nowSeconds` from memory (the cursor stays). */
  prune(nowSeconds: number): void {
    const before = this.log.length;
    this.log = this.log.filter((item) => item.entry.expires_at > nowSeconds);
    if (this.log.length !== before) this.changes++;
  }
}
