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
  const send = (events: FeedEvent[]) => {
    for (const e of events) {
      const id = Number(e.cursor);
      if (id <= last) continue;
      last = id;
      stream.write(formatEvent(e));
    }
  };
  // subscribe before catching up, so nothing committed in between is missed
  const unsubscribe = services.denyList.subscribe((events) => (live ? send(events) : buffered.push(...events)));
  const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), hub.heartbeatMs);
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
  live = true;
  send(buffered.splice(0));
}
