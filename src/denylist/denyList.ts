// The deny list: revoked access tokens by `jti`, revoked refresh families by `sid`, and users by
// `sub` + `issued_before`. The table is the source of truth; every process keeps an in-memory copy
// synced by cursor (so introspection is a map lookup, and entries written by the CLI or another
// worker reach this process's SSE subscribers within one sync interval).
import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Clock, seconds } from '../clock.js';
import type { Logger } from '../logger.js';
import { DenyListRepository, type NewDenyEntry } from '../store/denyList.js';
import type { Database, DenyListRow } from '../store/schema.js';

export type { NewDenyEntry };

/** An entry as the feed shows it (INTERFACE.md). */
export type FeedEntry =
  | { type: 'jti' | 'sid' | 'kid'; value: string; expires_at: number }
  | { type: 'sub' | 'client'; value: string; issued_before: number; expires_at: number };

export interface FeedEvent {
  cursor: string;
  entry: FeedEntry;
}

export interface FeedPage {
  cursor: string;
  entries: FeedEntry[];
}

const PAGE = 1000;

export function toFeedEntry(row: Pick<DenyListRow, 'type' | 'value' | 'issued_before' | 'expires_at'>): FeedEntry {
  return row.type === 'sub' || row.type === 'client'
    ? { type: row.type, value: row.value, issued_before: Number(row.issued_before ?? 0), expires_at: Number(row.expires_at) }
    : { type: row.type, value: row.value, expires_at: Number(row.expires_at) };
}

/** Cursors are opaque to clients; today they are the entry id in decimal. */
export function parseCursor(text: string | undefined): number | undefined {
  if (text === undefined) return 0;
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

export interface DeniableClaims {
  jti?: string | undefined;
  sid?: string | undefined;
  sub?: string | undefined;
  iat?: number | undefined;
}

export class DenyList {
  private readonly jti = new Map<string, number>();
  private readonly sid = new Map<string, number>();
  private readonly sub = new Map<string, { issuedBefore: number; expiresAt: number }>();
  private cursor = 0;
  // every entry pulled, in cursor order: GET /deny-list pages are served from here, not the table
  private feed: Array<{ id: number; entry: FeedEntry }> = [];
  // bumped whenever `feed` changes; rendered pages are cached under it
  private version = 0;
  private rendered = new Map<string, { body: string; etag: string }>();
  private syncing: Promise<void> | undefined;
  private again = false;
  private readonly subscribers = new Set<(events: FeedEvent[]) => void>();

  constructor(private readonly deps: { db: Kysely<Database>; clock: Clock; logger?: Logger | undefined }) {}

  /** Writes entries (inside the caller's transaction when given). Call `sync()` after commit. */
  async add(entries: NewDenyEntry[], db: Kysely<Database> = this.deps.db): Promise<void> {
    await new DenyListRepository(db).insert(entries, this.deps.clock.now());
  }

  /** Pulls entries newer than the cursor into memory and pushes them to subscribers. Coalesces concurrent calls. */
  sync(): Promise<void> {
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
      const rows = await repo.allAfter(this.cursor, PAGE);
      if (rows.length === 0) return;
      const now = seconds(this.deps.clock.now());
      const events: FeedEvent[] = [];
      for (const row of rows) {
        this.remember(row);
        this.feed.push({ id: Number(row.id), entry: toFeedEntry(row) });
        if (Number(row.expires_at) > now) events.push({ cursor: String(row.id), entry: toFeedEntry(row) });
      }
      this.cursor = Number(rows[rows.length - 1]?.id ?? this.cursor);
      this.version++;
      if (events.length > 0) for (const s of this.subscribers) s(events);
      if (rows.length < PAGE) return;
    }
  }

  private remember(row: DenyListRow): void {
    const expiresAt = Number(row.expires_at);
    if (row.type === 'jti') this.jti.set(row.value, Math.max(expiresAt, this.jti.get(row.value) ?? 0));
    else if (row.type === 'sid') this.sid.set(row.value, Math.max(expiresAt, this.sid.get(row.value) ?? 0));
    // `client` and `kid` entries only pass through to the feed here (for the verifiers)
    else if (row.type === 'sub') {
      const prev = this.sub.get(row.value);
      const issuedBefore = Number(row.issued_before ?? 0);
      this.sub.set(row.value, { issuedBefore: Math.max(issuedBefore, prev?.issuedBefore ?? 0), expiresAt: Math.max(expiresAt, prev?.expiresAt ?? 0) });
    }
  }

  /** Denied when its jti or sid is listed, or its sub with issued_before ≥ iat (same second: fail closed). */
  isDenied(claims: DeniableClaims): boolean {
    const now = seconds(this.deps.clock.now());
    const live = (exp: number | undefined) => exp !== undefined && exp > now;
    if (claims.jti !== undefined && live(this.jti.get(claims.jti))) return true;
    if (claims.sid !== undefined && live(this.sid.get(claims.sid))) return true;
    if (claims.sub !== undefined) {
      const s = this.sub.get(claims.sub);
      if (s && live(s.expiresAt) && (claims.iat === undefined || s.issuedBefore >= claims.iat)) return true;
    }
    return false;
  }

  /** One page of the feed after a cursor (0: from the start), as the in-memory copy holds it now (the caller has synced). */
  private pageFromMemory(after: number): FeedPage {
    const now = seconds(this.deps.clock.now());
    const entries: FeedEntry[] = [];
    let cursor = after;
    // ids only grow: binary search for the first entry after the cursor
    let lo = 0;
    let hi = this.feed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.feed[mid]?.id ?? 0) <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.feed.length && entries.length < PAGE; i++) {
      const item = this.feed[i];
      if (!item || item.entry.expires_at <= now) continue;
      entries.push(item.entry);
      cursor = item.id;
    }
    if (entries.length === 0) cursor = after === 0 ? this.cursor : after;
    return { cursor: String(cursor), entries };
  }

  /**
   * The page as its JSON body and ETag, rendered once per change (or second) and reused. It first
   * pulls what other processes wrote (one indexed query that usually finds nothing).
   */
  async renderedPage(after: number): Promise<{ body: string; etag: string }> {
    await this.sync();
    const key = `${after}:${this.version}:${seconds(this.deps.clock.now())}`;
    const hit = this.rendered.get(key);
    if (hit) return hit;
    // synced just above: rendered from exactly the state the cache key names
    const body = JSON.stringify(this.pageFromMemory(after));
    const etag = `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (this.rendered.size >= 64) this.rendered.clear();
    this.rendered.set(key, { body, etag });
    return { body, etag };
  }

  /** The same page as events, each with its own cursor (the SSE catch-up). */
  async events(after: number): Promise<FeedEvent[]> {
    const rows = await new DenyListRepository(this.deps.db).after(after, seconds(this.deps.clock.now()), PAGE);
    return rows.map((row) => ({ cursor: String(row.id), entry: toFeedEntry(row) }));
  }

  subscribe(listener: (events: FeedEvent[]) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Entries live in memory (for metrics). */
  get size(): number {
    return this.jti.size + this.sid.size + this.sub.size;
  }

  /** Drops expired entries from the table and from memory. */
  async prune(): Promise<number> {
    const now = seconds(this.deps.clock.now());
    const removed = await new DenyListRepository(this.deps.db).prune(now);
    for (const map of [this.jti, this.sid]) for (const [k, exp] of map) if (exp <= now) map.delete(k);
    for (const [k, v] of this.sub) if (v.expiresAt <= now) this.sub.delete(k);
    const before = this.feed.length;
    this.feed = this.feed.filter((item) => item.entry.expires_at > now);
    if (this.feed.length !== before) this.version++;
    return removed;
  }
}
