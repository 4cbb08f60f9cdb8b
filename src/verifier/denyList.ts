// The resource server's copy of Tollgate's deny list: loaded page by page from the feed, then kept
// current by the SSE stream (or by polling), always by cursor, so a reconnect catches up on what
// it missed instead of reloading everything. The time of the last successful sync decides whether
// the copy can still be trusted (maxStaleness).
import { readEventStream } from './sse.js';

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

/** The entry types this version understands; any other type on the feed is skipped (forward compatibility). */
export type FeedEntry =
  | { type: 'jti' | 'sid' | 'kid'; value: string; expires_at: number }
  | { type: 'sub' | 'client'; value: string; issued_before: number; expires_at: number };

export interface DeniableClaims {
  jti?: unknown;
  sid?: unknown;
  sub?: unknown;
  client_id?: unknown;
  iat?: unknown;
}

/** A `sub` or `client` entry: every token of that subject or client issued up to issuedBefore. */
interface IssuedBefore {
  issuedBefore: number;
  expiresAt: number;
}

const REQUEST_TIMEOUT_MS = 10_000;
const PRUNE_INTERVAL_MS = 60_000;
const DEFAULT_RETRY_MS = 1000;
const NUDGE_MS = 1000;

export class FeedError extends Error {
  override name = 'FeedError';
}

export function basicAuthorization(clientId: string, clientSecret: string): string {
  // RFC 6749 §2.3.1: form-encode each part before joining, so ':' and non-ASCII survive
  const enc = (s: string) => new URLSearchParams({ v: s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

function parseEntry(raw: unknown): FeedEntry | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  if (typeof e.value !== 'string' || typeof e.expires_at !== 'number' || !Number.isFinite(e.expires_at)) return undefined;
  if (e.type === 'jti' || e.type === 'sid' || e.type === 'kid') return { type: e.type, value: e.value, expires_at: e.expires_at };
  if ((e.type === 'sub' || e.type === 'client') && typeof e.issued_before === 'number' && Number.isFinite(e.issued_before)) {
    return { type: e.type, value: e.value, issued_before: e.issued_before, expires_at: e.expires_at };
  }
  return undefined;
}

function parsePage(raw: unknown): { cursor: string; entries: unknown[] } {
  if (typeof raw === 'object' && raw !== null) {
    const p = raw as Record<string, unknown>;
    if (typeof p.cursor === 'string' && Array.isArray(p.entries)) return { cursor: p.cursor, entries: p.entries };
  }
  throw new FeedError('the deny-list feed answered something that is not a feed page');
}

export class DenyListMirror {
  private readonly jti = new Map<string, number>();
  private readonly sid = new Map<string, number>();
  private readonly kid = new Map<string, number>();
  private readonly sub = new Map<string, IssuedBefore>();
  private readonly client = new Map<string, IssuedBefore>();
  private cursor: string | undefined;
  private lastSyncMs: number | undefined;
  /** ETag of the last empty page, by URL: an unchanged feed answers 304. */
  private emptyPage: { url: string; etag: string } | undefined;
  private retryMs = DEFAULT_RETRY_MS;
  /** The timer of the next sync attempt, while one is scheduled (none while a sync runs or a stream is open). */
  private retry: NodeJS.Timeout | undefined;
  private attemptAt = 0;
  private failures = 0;
  private closed = false;
  private readonly shutdown = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly authorization: string;
  private readonly mode: 'stream' | 'poll';
  private readonly pollMs: number;
  private readonly maxStalenessMs: number;
  private readonly maxBackoffMs: number;
  private loaded = false;
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];

  constructor(
    private readonly options: DenyListOptions,
    private readonly deps: {
      now: () => number;
      clockToleranceSeconds: number;
      /** Called when a `kid` entry arrives: the verifier drops that key from its JWK Set at once. */
      onKidDenied?: (kid: string) => void;
    },
  ) {
    const mode = options.mode ?? 'stream';
    if (mode !== 'stream' && mode !== 'poll') throw new TypeError(`denyList.mode must be 'stream' or 'poll', not ${String(mode)}`);
    this.mode = mode;
    this.pollMs = seconds(options.pollInterval ?? 2, 'denyList.pollInterval');
    this.maxStalenessMs = seconds(options.maxStaleness ?? 30, 'denyList.maxStaleness');
    this.maxBackoffMs = Math.max(DEFAULT_RETRY_MS, Math.min(30_000, this.maxStalenessMs / 2));
    new URL(options.url); // a bad URL fails at construction, not on the first sync
    if (typeof options.clientId !== 'string' || options.clientId === '' || typeof options.clientSecret !== 'string') throw new TypeError('denyList.clientId and denyList.clientSecret are required');
    this.authorization = basicAuthorization(options.clientId, options.clientSecret);

    void this.sync();
    this.every(PRUNE_INTERVAL_MS, () => this.prune());
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

  /**
   * Denied when its jti or sid is listed, or its sub or client_id with issued_before ≥ iat (same
   * second: fail closed, and a token without a numeric iat is denied too).
   */
  isDenied(claims: DeniableClaims): boolean {
    const live = (expiresAt: number | undefined) => expiresAt !== undefined && this.live(expiresAt);
    if (typeof claims.jti === 'string' && live(this.jti.get(claims.jti))) return true;
    if (typeof claims.sid === 'string' && live(this.sid.get(claims.sid))) return true;
    const issuedUpTo = (entry: IssuedBefore | undefined) => entry !== undefined && this.live(entry.expiresAt) && (typeof claims.iat !== 'number' || entry.issuedBefore >= claims.iat);
    if (typeof claims.sub === 'string' && issuedUpTo(this.sub.get(claims.sub))) return true;
    if (typeof claims.client_id === 'string' && issuedUpTo(this.client.get(claims.client_id))) return true;
    return false;
  }

  /** The key with this kid was removed at the issuer (a `kid` entry): nothing it signed is accepted. */
  isKidDenied(kid: unknown): boolean {
    if (typeof kid !== 'string') return false;
    const expiresAt = this.kid.get(kid);
    return expiresAt !== undefined && this.live(expiresAt);
  }

  close(): void {
    this.closed = true;
    this.settle(new FeedError('the verifier is closed'));
    this.shutdown.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // An entry matters until every token it could deny has expired, and a token is still accepted for
  // clockTolerance past its exp: keep the entry that long too.
  private live(expiresAt: number): boolean {
    return expiresAt + this.deps.clockToleranceSeconds > Math.floor(this.deps.now() / 1000);
  }

  private apply(raw: unknown): void {
    const e = parseEntry(raw);
    if (!e || !this.live(e.expires_at)) return;
    if (e.type === 'sub' || e.type === 'client') {
      const map = e.type === 'sub' ? this.sub : this.client;
      const prev = map.get(e.value);
      map.set(e.value, { issuedBefore: Math.max(e.issued_before, prev?.issuedBefore ?? 0), expiresAt: Math.max(e.expires_at, prev?.expiresAt ?? 0) });
    } else {
      const map = e.type === 'jti' ? this.jti : e.type === 'sid' ? this.sid : this.kid;
      map.set(e.value, Math.max(e.expires_at, map.get(e.value) ?? 0));
      // a removed (perhaps leaked) key must stop verifying now, not when the JWK Set cache expires
      if (e.type === 'kid') this.deps.onKidDenied?.(e.value);
    }
  }

  private prune(): void {
    for (const map of [this.jti, this.sid, this.kid]) for (const [k, exp] of map) if (!this.live(exp)) map.delete(k);
    for (const map of [this.sub, this.client]) for (const [k, v] of map) if (!this.live(v.expiresAt)) map.delete(k);
  }

  /** Pages through the feed from the cursor until a page comes back empty. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const url = new URL(this.options.url);
      if (this.cursor !== undefined) url.searchParams.set('after', this.cursor);
      const startedAt = this.deps.now();
      const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
      if (this.emptyPage?.url === url.href) headers['if-none-match'] = this.emptyPage.etag;
      const res = await fetch(url, { headers, redirect: 'error', signal: this.signal(REQUEST_TIMEOUT_MS) });
      if (res.status === 304) {
        await res.body?.cancel();
        this.lastSyncMs = startedAt;
        return;
      }
      if (res.status === 400 && this.cursor !== undefined) {
        // the feed no longer knows our cursor (its store was restored or copied): a cursor past
        // its head would skip revocations, so load the whole feed again (entries apply idempotently)
        await res.body?.cancel();
        this.cursor = undefined;
        this.emptyPage = undefined;
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new FeedError(`the deny-list feed answered ${res.status}`);
      }
      const page = parsePage(await res.json());
      for (const entry of page.entries) this.apply(entry);
      const advanced = page.cursor !== this.cursor;
      this.cursor = page.cursor;
      if (page.entries.length === 0 || !advanced) {
        const etag = res.headers.get('etag');
        this.emptyPage = etag && page.entries.length === 0 ? { url: url.href, etag } : undefined;
        this.lastSyncMs = startedAt;
        this.prune();
        return;
      }
    }
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
      await this.follow();
    } catch (e) {
      if (!caughtUp) this.settle(e);
      this.failures++;
    }
    if (this.closed) return;
    // the server's retry hint after a clean end; doubling on failures, so an outage is not hammered
    const base = this.failures === 0 ? this.retryMs : Math.min(this.maxBackoffMs, this.retryMs * 2 ** (this.failures - 1));
    this.retry = this.after(base * (1 + Math.random() * 0.25), () => void this.sync());
  }

  private async follow(): Promise<void> {
    const stream = new AbortController();
    const signal = AbortSignal.any([this.shutdown.signal, stream.signal]);
    const url = new URL(this.options.url);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/events`;
    url.search = '';
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'text/event-stream', 'cache-control': 'no-store' };
    if (this.cursor !== undefined) headers['last-event-id'] = this.cursor;

    const connecting = this.after(REQUEST_TIMEOUT_MS, () => stream.abort());
    let watchdog: NodeJS.Timeout | undefined;
    try {
      const res = await fetch(url, { headers, redirect: 'error', signal });
      this.cancel(connecting);
      if (res.status !== 200 || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        // a cursor past the feed's head (400): the next cycle reloads the feed from the start
        if (res.status === 400) this.cursor = undefined;
        await res.body?.cancel();
        throw new FeedError(`the deny-list stream answered ${res.status}`);
      }
      this.failures = 0;
      this.lastSyncMs = this.deps.now();
      // heartbeats prove the stream is alive; silence longer than maxStaleness means a dead
      // connection that TCP has not noticed yet: drop it and reconnect
      watchdog = setInterval(() => {
        if (!this.fresh) stream.abort();
      }, Math.max(50, Math.min(1000, this.maxStalenessMs / 4)));
      watchdog.unref();
      await readEventStream(
        res.body,
        {
          onActivity: () => (this.lastSyncMs = this.deps.now()),
          // honoured, within bounds: a hint longer than the backoff cap would let the list go stale
          onRetry: (ms) => (this.retryMs = Math.min(this.maxBackoffMs, Math.max(100, ms))),
          onEvent: (event) => {
            if (event.type !== 'deny') return;
            try {
              this.apply(JSON.parse(event.data));
            } catch {
              return; // not JSON: skipped, like any entry this version does not understand
            }
            if (event.id !== '') this.cursor = event.id;
          },
        },
        this.cursor ?? '',
      );
    } finally {
      this.cancel(connecting);
      if (watchdog) clearInterval(watchdog);
    }
  }

  private signal(timeoutMs: number): AbortSignal {
    return AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(timeoutMs)]);
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
