// Tollgate's deny-list feed as the verifier reads it, always by cursor: pages from the cursor until
// one comes back empty (catch-up), and the SSE stream from the cursor (follow). A reconnect resumes
// where the last read ended instead of reloading everything.
import { readEventStream } from './sse.js';

const REQUEST_TIMEOUT_MS = 10_000;

export class FeedError extends Error {
  override name = 'FeedError';
}

export function basicAuthorization(clientId: string, clientSecret: string): string {
  // RFC 6749 §2.3.1: form-encode each part before joining, so ':' and non-ASCII survive
  const enc = (s: string) => new URLSearchParams({ v: s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

function parsePage(raw: unknown): { cursor: string; entries: unknown[] } {
  if (typeof raw === 'object' && raw !== null) {
    const p = raw as Record<string, unknown>;
    if (typeof p.cursor === 'string' && Array.isArray(p.entries)) return { cursor: p.cursor, entries: p.entries };
  }
  throw new FeedError('the deny-list feed answered something that is not a feed page');
}

export interface CatchUp {
  /** When the read that reached the feed's head started: the list is current as of then. */
  syncedAt: number;
  /** The feed answered 304: nothing changed since the last empty page. */
  notModified: boolean;
}

export interface StreamHandlers {
  /** The stream is open (a successful sync). */
  onOpen(): void;
  /** Any line received, heartbeats included. */
  onActivity(): void;
  /** The server's `retry:` hint, in milliseconds. */
  onRetry(ms: number): void;
  /** One entry as the feed sent it. */
  onEntry(raw: unknown): void;
  /** Asked every watchdogMs while the stream is open; false drops the connection. */
  isFresh(): boolean;
  watchdogMs: number;
}

export class FeedClient {
  /** The id of the last entry read: where the next page or stream starts. */
  private cursor: string | undefined;
  /** ETag of the last empty page, by URL: an unchanged feed answers 304. */
  private emptyPage: { url: string; etag: string } | undefined;
  private readonly authorization: string;

  constructor(
    /** The feed, e.g. `https://auth.example.com/deny-list`; `${url}/events` is its SSE stream. */
    private readonly url: string,
    clientId: string,
    clientSecret: string,
    private readonly shutdown: AbortSignal,
    private readonly now: () => number,
  ) {
    new URL(url); // a bad URL fails at construction, not on the first sync
    if (typeof clientId !== 'string' || clientId === '' || typeof clientSecret !== 'string') throw new TypeError('denyList.clientId and denyList.clientSecret are required');
    this.authorization = basicAuthorization(clientId, clientSecret);
  }

  /** Pages through the feed from the cursor until a page comes back empty. */
  async catchUp(onEntry: (raw: unknown) => void): Promise<CatchUp> {
    for (;;) {
      const url = new URL(this.url);
      if (this.cursor !== undefined) url.searchParams.set('after', this.cursor);
      const startedAt = this.now();
      const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
      if (this.emptyPage?.url === url.href) headers['if-none-match'] = this.emptyPage.etag;
      const res = await fetch(url, { headers, redirect: 'error', signal: AbortSignal.any([this.shutdown, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) });
      if (res.status === 304) {
        await res.body?.cancel();
        return { syncedAt: startedAt, notModified: true };
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
      for (const entry of page.entries) onEntry(entry);
      const advanced = page.cursor !== this.cursor;
      this.cursor = page.cursor;
      if (page.entries.length === 0 || !advanced) {
        const etag = res.headers.get('etag');
        this.emptyPage = etag && page.entries.length === 0 ? { url: url.href, etag } : undefined;
        return { syncedAt: startedAt, notModified: false };
      }
    }
  }

  /** Follows the SSE stream from the cursor until it ends, fails or goes silent. */
  async follow(handlers: StreamHandlers): Promise<void> {
    const stream = new AbortController();
    const signal = AbortSignal.any([this.shutdown, stream.signal]);
    const url = new URL(this.url);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/events`;
    url.search = '';
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'text/event-stream', 'cache-control': 'no-store' };
    if (this.cursor !== undefined) headers['last-event-id'] = this.cursor;

    const connecting = setTimeout(() => stream.abort(), REQUEST_TIMEOUT_MS);
    connecting.unref();
    let watchdog: NodeJS.Timeout | undefined;
    try {
      const res = await fetch(url, { headers, redirect: 'error', signal });
      clearTimeout(connecting);
      if (res.status !== 200 || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        // a cursor past the feed's head (400): the next cycle reloads the feed from the start
        if (res.status === 400) this.cursor = undefined;
        await res.body?.cancel();
        throw new FeedError(`the deny-list stream answered ${res.status}`);
      }
      handlers.onOpen();
      // heartbeats prove the stream is alive; silence longer than maxStaleness means a dead
      // connection that TCP has not noticed yet: drop it and reconnect
      watchdog = setInterval(() => {
        if (!handlers.isFresh()) stream.abort();
      }, handlers.watchdogMs);
      watchdog.unref();
      await readEventStream(
        res.body,
        {
          onActivity: () => handlers.onActivity(),
          onRetry: (ms) => handlers.onRetry(ms),
          onEvent: (event) => {
            if (event.type !== 'deny') return;
            try {
              handlers.onEntry(JSON.parse(event.data));
            } catch {
              return; // not JSON: skipped, like any entry this version does not understand
            }
            if (event.id !== '') this.cursor = event.id;
          },
        },
        this.cursor ?? '',
      );
    } finally {
      clearTimeout(connecting);
      if (watchdog) clearInterval(watchdog);
    }
  }
}
