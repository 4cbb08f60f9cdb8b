// GET /deny-list/events: the deny-list feed as Server-Sent Events. One `deny` event per entry,
// `id:` its cursor; a subscriber resumes with Last-Event-ID; comment heartbeats keep proxies open.
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { type FeedEvent, parseCursor } from '../denylist/denyList.js';
import { InvalidRequest } from '../oauth/errors.js';
import type { Services } from '../oauth/services.js';

export interface SseHub {
  /** Open streams, closed on shutdown with a `retry:` hint. */
  readonly streams: Set<PassThrough>;
  heartbeatMs: number;
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

export async function streamDenyList(ctx: Context, services: Services, hub: SseHub): Promise<void> {
  const from = ctx.get('last-event-id') || (typeof ctx.query.after === 'string' ? ctx.query.after : undefined);
  const after = parseCursor(from || undefined);
  if (after === undefined) throw new InvalidRequest('Last-Event-ID is not a cursor of this feed');

  const stream = new PassThrough();
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
  const unsubscribe = services.denyList.subscribe((events) => (live ? send(events) : buffered.push(...events)));
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), hub.heartbeatMs);
  heartbeat.unref();
  const close = () => {
    clearInterval(heartbeat);
    unsubscribe();
    hub.streams.delete(stream);
  };
  stream.on('close', close);
  ctx.req.on('close', () => stream.end());
  hub.streams.add(stream);

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
      const events = await services.denyList.events(cursor);
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
