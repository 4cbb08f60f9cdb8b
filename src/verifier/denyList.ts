// The resource server's copy of Tollgate's deny list: loaded page by page from the feed, then kept
// current by the SSE stream (or by polling), always by cursor, so a reconnect catches up on what
// it missed instead of reloading everything. The time of the last successful sync decides whether
// the copy can still be trusted (maxStaleness). This file decides when to sync and how long to
// back off; feedClient.ts speaks to the feed, denyIndex.ts holds the entries.
import { DenyIndex, type DenyIndexDeps, type DeniableClaims } from './denyIndex.js';
import { FeedClient, FeedError } from './feedClient.js';

export interface DenyListOptions {
  /** The feed, e.g. `https://auth.example.com/deny-list`; `${url}/events` is its SSE stream. */
  url: string;
  clientId: string;
  clientSecret: string;
  /** 'stream' (SSE, default) or 'poll'. */
  mode?: 'stream' | 'poll';
  /** Seconds between polls in 'poll' mode (default 2). */
  pollInterval?: number;
  /** Seconds without a successful sync before verify fails with ERR_DENY_LIST_UNAVAILABLE (default 30). */
  maxStaleness?: number;
  /** Past maxStaleness, verify without the list instead of failing closed. */
  failOpen?: boolean;
}

const PRUNE_INTERVAL_MS = 60_000;
const DEFAULT_RETRY_MS = 1000;
const NUDGE_MS = 1000;

export class DenyListMirror {
  private readonly index: DenyIndex;
  private readonly feed: FeedClient;
  private lastSyncMs: number | undefined;
  private retryMs = DEFAULT_RETRY_MS;
  /** The timer of the next sync attempt, while one is scheduled (none while a sync runs or a stream is open). */
  private retry: NodeJS.Timeout | undefined;
  private attemptAt = 0;
  private failures = 0;
  private closed = false;
  private readonly shutdown = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly mode: 'stream' | 'poll';
  private readonly pollMs: number;
  private readonly maxStalenessMs: number;
  private readonly maxBackoffMs: number;
  private loaded = false;
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];

  constructor(
    private readonly options: DenyListOptions,
    private readonly deps: DenyIndexDeps,
  ) {
    const mode = options.mode ?? 'stream';
    if (mode !== 'stream' && mode !== 'poll') throw new TypeError(`denyList.mode must be 'stream' or 'poll', not ${String(mode)}`);
    this.mode = mode;
    this.pollMs = seconds(options.pollInterval ?? 2, 'denyList.pollInterval');
    this.maxStalenessMs = seconds(options.maxStaleness ?? 30, 'denyList.maxStaleness');
    this.maxBackoffMs = Math.max(DEFAULT_RETRY_MS, Math.min(30_000, this.maxStalenessMs / 2));
    this.feed = new FeedClient(options.url, options.clientId, options.clientSecret, this.shutdown.signal, deps.now);
    this.index = new DenyIndex(deps);

    void this.sync();
    this.every(PRUNE_INTERVAL_MS, () => this.index.prune());
  }

  /** Resolves once the list has been loaded; until then, rejects when the next sync attempt fails (syncing goes on). */
  whenLoaded(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    if (this.closed) return Promise.reject(new FeedError('the verifier is closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private settle(error?: unknown): void {
    if (error === undefined) this.loaded = true;
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) if (error === undefined) w.resolve();
    else w.reject(error);
  }

  get failOpen(): boolean {
    return this.options.failOpen === true;
  }

  /** The list was synced within maxStaleness. */
  get fresh(): boolean {
    return this.lastSyncMs !== undefined && this.deps.now() - this.lastSyncMs <= this.maxStalenessMs;
  }

  /** See DenyIndex.isDenied. */
  isDenied(claims: DeniableClaims): boolean {
    return this.index.isDenied(claims);
  }

  /** The key with this kid was removed at the issuer (a `kid` entry): nothing it signed is accepted. */
  isKidDenied(kid: unknown): boolean {
    return this.index.isKidDenied(kid);
  }

  close(): void {
    this.closed = true;
    this.settle(new FeedError('the verifier is closed'));
    this.shutdown.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * A verify found the list stale: try again now rather than at the end of the backoff, so the API
   * recovers as soon as Tollgate is back (at most one early attempt per second).
   */
  nudge(): void {
    if (this.closed || !this.retry || this.deps.now() - this.attemptAt < NUDGE_MS) return;
    this.cancel(this.retry);
    this.retry = undefined;
    void this.sync();
  }

  private sync(): Promise<void> {
    this.attemptAt = this.deps.now();
    return this.mode === 'stream' ? this.connect() : this.poll();
  }

  private async catchUp(): Promise<void> {
    const { syncedAt, notModified } = await this.feed.catchUp((raw) => this.index.apply(raw));
    this.lastSyncMs = syncedAt;
    if (!notModified) this.index.prune();
  }

  private async poll(): Promise<void> {
    try {
      await this.catchUp();
      this.settle();
    } catch (e) {
      this.settle(e);
    }
    if (!this.closed) this.retry = this.after(this.pollMs, () => void this.sync());
  }

  /** One connection cycle: catch up by cursor, then follow the stream until it ends; then again. */
  private async connect(): Promise<void> {
    let caughtUp = false;
    try {
      await this.catchUp();
      caughtUp = true;
      this.settle();
      await this.feed.follow({
        onOpen: () => {
          this.failures = 0;
          this.lastSyncMs = this.deps.now();
        },
        onActivity: () => (this.lastSyncMs = this.deps.now()),
        // honoured, within bounds: a hint longer than the backoff cap would let the list go stale
        onRetry: (ms) => (this.retryMs = Math.min(this.maxBackoffMs, Math.max(100, ms))),
        onEntry: (raw) => this.index.apply(raw),
        isFresh: () => this.fresh,
        watchdogMs: Math.max(50, Math.min(1000, this.maxStalenessMs / 4)),
      });
    } catch (e) {
      if (!caughtUp) this.settle(e);
      this.failures++;
    }
    if (this.closed) return;
    // the server's retry hint after a clean end; doubling on failures, so an outage is not hammered
    const base = this.failures === 0 ? this.retryMs : Math.min(this.maxBackoffMs, this.retryMs * 2 ** (this.failures - 1));
    this.retry = this.after(base * (1 + Math.random() * 0.25), () => void this.sync());
  }

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.retry === t) this.retry = undefined;
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
    return t;
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.add(t);
  }

  private cancel(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }
}

function seconds(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number of seconds`);
  return value * 1000;
}
