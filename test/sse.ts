// A streaming reader of GET /deny-list/events over fetch, for the SSE and fleet tests.
import { basic } from './helpers.js';

export type Creds = { client_id: string; client_secret?: string };

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
}

/** A streaming SSE reader over fetch: the raw text so far, parsed complete events, comment lines. */
export async function subscribe(url: string, client: Creds, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(`${url}/deny-list/events`, { headers: { Authorization: basic(client), Accept: 'text/event-stream', ...headers }, signal: abort.signal });
  let text = '';
  let ended = false;
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  const pump = (async () => {
    if (!reader) return;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      ended = true;
    } catch {
      // aborted by close()
    }
  })();
  const blocks = () => text.split('\n\n').slice(0, -1);
  return {
    res,
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    /** Complete events (blocks with an id, event or data field). */
    events(): SseEvent[] {
      return blocks()
        .map((block) => {
          const e: SseEvent = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'id' || field === 'event' || field === 'data' || field === 'retry') e[field] = value;
          }
          return e;
        })
        .filter((e) => e.id !== undefined || e.event !== undefined || e.data !== undefined);
    },
    deny(): Array<{ id: string; entry: Record<string, unknown> }> {
      return this.events()
        .filter((e) => e.event === 'deny')
        .map((e) => ({ id: e.id ?? '', entry: JSON.parse(e.data ?? 'null') as Record<string, unknown> }));
    },
    comments(): string[] {
      return text.split('\n').filter((line) => line.startsWith(':'));
    },
    async close() {
      abort.abort();
      await pump;
    },
  };
}
