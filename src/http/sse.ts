// GET /deny-list/events: the deny-list feed as Server-Sent Events. One `deny` event per entry,
// `id:` its cursor; a subscriber resumes with Last-Event-ID; comment heartbeats keep proxies open.
// The hub bounds the streams (per client and in all: each holds a connection, a subscription and
// a timer) and ends the streams of a client that was removed or whose secret was rotated.
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import type { DenyList, FeedEvent } from '../denylist/denyList.js';
import type { Logger } from '../logger.js';
import { OAuthError } from '../oauth/errors.js';
import { feedCursor } from './feedCursor.js';

/** Who opened a stream: the client, and the secret hash its authentication matched. */
export interface StreamOwner {
  clientId: string;
  secretHash: string | null;
}

export interface SseHubOptions {
  heartbeatMs: number;
  /** Open streams one client may hold (denyList.maxStreamsPerClient). */
  maxStreamsPerClient: number;
  /** Open streams in all (denyList.maxStreams). */
  maxStreams: number;
  /** The current secret hash of each of these clients that still exists (ClientRepository.secretHashes). */
  secretHashes(clientIds: readonly string[]): Promise<Map<string, string | null>>;
  logger?: Logger | undefined;
  /** How often the clients of open streams are re-checked; default 1000 ms. */
  recheckMs?: number | undefined;
}

/** Retry-After of a stream refused at a cap: a slot frees only when another stream ends. */
export const STREAM_RETRY_AFTER_SECONDS = 10;

/** How long a stream ended for its credentials may take to drain before it is cut off. */
const END_GRACE_MS = 5000;

/**
 * 429 at a stream cap. The same status and RFC 6749-shaped body as the password grant's throttle
 * (`temporarily_unavailable`, with Retry-After), which is what clients already handle.
 */
export class TooManyStreams extends OAuthError {
  readonly error = 'temporarily_unavailable';
  readonly description = 'too many open streams; try again later';
  override readonly status = 429;
  constructor(detail: string) {
    super(detail);
    this.headers['Retry-After'] = String(STREAM_RETRY_AFTER_SECONDS);
  }
}

/**
 * The open streams of one process. Caps: one client opening stream after stream (300 were
 * accepted before) would hold connections, subscriptions and heartbeat timers without bound.
 *
 * Revocation reach: a stream is authorized once, when it opens, so a removed client or a rotated
 * secret would keep receiving the feed for as long as the connection lives. The CLI changes the
 * store from another process, so the hub re-checks, once a second while streams are open, the
 * clients of all its streams in one query, and ends a stream whose client is gone or whose secret
 * hash is no longer the one its authentication matched (INTERFACE.md: CLI changes take effect
 * within 2 s). A change made through this process's ClientService ends them at once (endClient).
 */
export class SseHub {
  /** Open streams, closed on shutdown with a `retry:` hint. */
  readonly streams = new Set<PassThrough>();
  readonly heartbeatMs: number;
  /** Streams refused with 429, by the cap that refused them (metrics). */
  readonly refused = { client: 0, server: 0 };
  /** Streams ended because their client was removed or its secret rotated (metrics). */
  revoked = 0;
  private readonly owners = new Map<PassThrough, StreamOwner>();
  private readonly perClient = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private failing = false;

  constructor(private readonly options: SseHubOptions) {
    this.heartbeatMs = options.heartbeatMs;
  }

  /** Counts a new stream in, or throws TooManyStreams (429) past a cap. Call before anything async. */
  open(stream: PassThrough, owner: StreamOwner): void {
    const held = this.perClient.get(owner.clientId) ?? 0;
    if (held >= this.options.maxStreamsPerClient) {
      this.refused.client++;
      throw new TooManyStreams(`this client already holds ${held} open streams (the limit)`);
    }
    if (this.streams.size >= this.options.maxStreams) {
      this.refused.server++;
      throw new TooManyStreams('the server holds as many streams as it allows');
    }
    this.streams.add(stream);
    this.owners.set(stream, owner);
    this.perClient.set(owner.clientId, held + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.recheck(), this.options.recheckMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Counts a stream out (on its 'close'); idempotent. */
  release(stream: PassThrough): void {
    this.streams.delete(stream);
    const owner = this.owners.get(stream);
    if (owner) {
      this.owners.delete(stream);
      const held = (this.perClient.get(owner.clientId) ?? 1) - 1;
      if (held > 0) this.perClient.set(owner.clientId, held);
      else this.perClient.delete(owner.clientId);
    }
    if (this.owners.size === 0) this.stopTimer();
  }

  /** Ends every stream of a client at once (it was removed or its secret rotated in this process). */
  endClient(clientId: string): void {
    for (const [stream, owner] of this.owners) if (owner.clientId === clientId) this.revoke(stream);
  }

  /**
   * Ends the streams whose client is gone or whose secret changed since they opened. Only streams
   * open when the query starts are judged: one opened meanwhile may have authenticated with a
   * secret newer than what the query read.
   */
  async recheck(): Promise<void> {
    if (this.checking) return;
    const open = [...this.owners];
    if (open.length === 0) return;
    this.checking = true;
    try {
      const current = await this.options.secretHashes([...new Set(open.map(([, o]) => o.clientId))]);
      this.failing = false;
      for (const [stream, owner] of open) {
        if (!this.owners.has(stream)) continue;
        const hash = current.get(owner.clientId);
        if (hash === undefined || hash !== owner.secretHash) this.revoke(stream);
      }
    } catch (err) {
      // the store is unreachable: keep the streams (the next check decides), say so once per outage
      if (!this.failing) this.options.logger?.warn({ err }, 'could not re-check the clients of open SSE streams');
      this.failing = true;
    } finally {
      this.checking = false;
    }
  }

  /** Ends every stream with a retry hint (shutdown) and stops the re-checks. */
  close(): void {
    this.stopTimer();
    for (const s of this.streams) s.end('retry: 1000\n\n');
    this.streams.clear();
    this.owners.clear();
    this.perClient.clear();
  }

  /** A clean end of the response: the subscriber reconnects and is refused (401). */
  private revoke(stream: PassThrough): void {
    this.revoked++;
    this.release(stream);
    stream.end(': the client was removed or its secret changed\n\n');
    // a subscriber that stopped reading would hold the ended response open: cut it off
    setTimeout(() => stream.destroy(), END_GRACE_MS).unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * A live subscriber that stops reading is cut off once this much is queued for it, rather than held
 * in memory without bound; it reconnects with Last-Event-ID and catches up from the table. (The
 * catch-up itself is bounded by the table and written before the response starts flowing.)
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

export function formatEvent(e: FeedEvent): string {
  return `id: ${e.cursor}\nevent: deny\ndata: ${JSON.stringify(e.entry)}\n\n`;
}

export async function streamDenyList(ctx: Context, denyList: DenyList, hub: SseHub, owner: StreamOwner): Promise<void> {
  const from = ctx.get('last-event-id') || (typeof ctx.query.after === 'string' ? ctx.query.after : undefined);
  const after = await feedCursor(denyList, from || undefined, 'Last-Event-ID');

  const stream = new PassThrough();
  // counted in before anything else can await: the caps hold however many requests race
  hub.open(stream, owner);
  let last = after;
  let live = false;
  const buffered: FeedEvent[] = [];
  let allowance = MAX_QUEUED_BYTES;
  // a stream ended by shutdown stays subscribed until its reader drains it: never write after the end
  const write = (text: string) => {
    if (stream.writableEnded || stream.destroyed) return;
    if (live && stream.writableLength > allowance) stream.destroy();
    else stream.write(text);
  };
  const send = (events: FeedEvent[]) => {
    for (const e of events) {
      const id = Number(e.cursor);
      if (id <= last) continue;
      last = id;
      write(formatEvent(e));
    }
  };
  // subscribe before catching up, so nothing committed in between is missed
  const unsubscribe = denyList.subscribe((events) => (live ? send(events) : buffered.push(...events)));
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), hub.heartbeatMs);
  heartbeat.unref();
  const close = () => {
    clearInterval(heartbeat);
    unsubscribe();
    hub.release(stream);
  };
  stream.on('close', close);
  ctx.req.on('close', () => stream.end());

  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.status = 200;
  ctx.set('Content-Type', 'text/event-stream; charset=utf-8');
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Connection', 'keep-alive');
  ctx.set('X-Accel-Buffering', 'no');
  ctx.body = stream;
  stream.write(`retry: 1000\n\n`);

  try {
    let cursor = after;
    for (;;) {
      const events = await denyList.events(cursor);
      if (events.length === 0) break;
      send(events);
      cursor = Number(events[events.length - 1]?.cursor ?? cursor);
    }
  } catch (e) {
    close();
    throw e;
  }
  // the catch-up is queued before the reader starts: allow the limit on top of it
  allowance = stream.writableLength + MAX_QUEUED_BYTES;
  live = true;
  send(buffered.splice(0));
}
