// The deny list: revoked access tokens by `jti`, revoked refresh families by `sid`, users and
// clients by `sub` / `client_id` + `issued_before`, removed signing keys by `kid`. The table is
// the source of truth; every process keeps an in-memory copy synced by cursor (feed.ts), so
// introspection is a map lookup (denyIndex.ts) and pages are served from memory (pages.ts).
import { type Clock, seconds } from '../clock.js';
import type { Logger } from '../logger.js';
import { DenyListRepository, type NewDenyEntry } from '../store/denyList.js';
import { type DeniableClaims, DenyIndex } from './denyIndex.js';
import type { FeedEvent } from './entries.js';
import { Feed } from './feed.js';
import { FeedPages } from './pages.js';
import type { Db } from '../store/database.js';

export type { DeniableClaims };
export type { FeedEntry, FeedEvent, FeedPage, NewDenyEntry } from './entries.js';
export { parseCursor } from './entries.js';

export class DenyList {
  private readonly index = new DenyIndex();
  private readonly feed: Feed;
  private readonly pages: FeedPages;

  constructor(private readonly deps: { db: Db; clock: Clock; logger?: Logger | undefined }) {
    this.feed = new Feed({ db: deps.db, clock: deps.clock, remember: (row) => this.index.remember(row) });
    this.pages = new FeedPages(this.feed);
  }

  /** Writes entries (inside the caller's transaction when given). Call `sync()` after commit. */
  async add(entries: NewDenyEntry[], db: Db = this.deps.db): Promise<void> {
    await new DenyListRepository(db).insert(entries, this.deps.clock.now());
  }

  /** Pulls entries newer than the cursor into memory and pushes them to subscribers. Coalesces concurrent calls. */
  sync(): Promise<void> {
    return this.feed.sync();
  }

  /** See DenyIndex.isDenied. */
  isDenied(claims: DeniableClaims): boolean {
    return this.index.isDenied(claims, seconds(this.deps.clock.now()));
  }

  /**
   * A page of the feed as its JSON body and ETag. It first pulls what other processes wrote (one
   * indexed query that usually finds nothing), so the page is rendered from exactly the state its
   * cache key names.
   */
  async renderedPage(after: number): Promise<{ body: Buffer; etag: string }> {
    await this.feed.sync();
    return this.pages.render(after, seconds(this.deps.clock.now()));
  }

  /** A cursor beyond the newest entry ever assigned (see Feed.isPastHead). */
  isPastHead(after: number): Promise<boolean> {
    return this.feed.isPastHead(after);
  }

  /** The live entries after a cursor as events, each with its own cursor (the SSE catch-up). */
  events(after: number): Promise<FeedEvent[]> {
    return this.feed.events(after);
  }

  subscribe(listener: (events: FeedEvent[]) => void): () => void {
    return this.feed.subscribe(listener);
  }

  /** Entries live in memory (for metrics). */
  get size(): number {
    return this.index.size;
  }

  /** Drops expired entries from the table and from memory. */
  async prune(): Promise<number> {
    const now = seconds(this.deps.clock.now());
    const removed = await new DenyListRepository(this.deps.db).prune(now);
    this.index.prune(now);
    this.feed.prune(now);
    return removed;
  }
}
