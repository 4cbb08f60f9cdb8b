// Fixtures for the fleet tests: several app instances on one store, each listening on its own port,
// an SSE reader, and a poll-wait with a deadline (for what must happen "within N seconds").
import { type SharedTestApps, type TestAppOptions, basic, createSharedTestApps, listen } from '../helpers.js';
import { type Creds, subscribe as openStream } from '../sse.js';

export type { Creds };


export interface Fleet extends SharedTestApps {
  urls: string[];
}

/** `count` instances on one fresh Postgres database (or SQLite file), each listening on loopback. */
export async function startFleet(count: number, options: Omit<TestAppOptions, 'store'> & { dialect?: 'sqlite' | 'postgres' } = {}): Promise<Fleet> {
  const shared = await createSharedTestApps(count, { dialect: 'postgres', ...options });
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  try {
    for (const t of shared.apps) servers.push(await listen(t.app));
  } catch (e) {
    for (const s of servers) await s.close();
    await shared.close();
    throw e;
  }
  return {
    ...shared,
    urls: servers.map((s) => s.url),
    async close() {
      for (const s of servers) await s.close();
      await shared.close();
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined | false> | T | undefined | false, everyMs = 20): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function form(url: string, path: string, client: Creds, body: Record<string, string>): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers: { Authorization: basic(client), 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
}

export interface DenyEvent {
  id: string;
  entry: { type: string; value: string; expires_at: number; issued_before?: number };
}

/** GET /deny-list/events as a stream: `deny()` is every complete `deny` event received so far. */
export async function subscribe(url: string, client: Creds, lastEventId?: string) {
  const stream = await openStream(url, client, lastEventId === undefined ? {} : { 'Last-Event-ID': lastEventId });
  if (stream.res.status !== 200) {
    await stream.close();
    throw new Error(`GET /deny-list/events answered ${stream.res.status}`);
  }
  return {
    get ended() {
      return stream.ended;
    },
    get text() {
      return stream.text;
    },
    deny: (): DenyEvent[] => stream.deny() as unknown as DenyEvent[],
    close: () => stream.close(),
  };
}
