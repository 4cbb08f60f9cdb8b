// The bounds of the deny-list feed (INTERFACE.md "Deny-list feed"): a client holds at most
// denyList.maxStreamsPerClient open streams and the server denyList.maxStreams, past which a new
// stream is 429 with Retry-After; a stream ends when its client is removed or its secret rotated,
// here or by another process on the same store (the CLI); and a cursor beyond the newest entry
// the store ever assigned is 400 invalid_request, on GET /deny-list and on the stream alike.
// On SQLite under `npm test`, on PostgreSQL under `npm run test:postgres`.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { seconds } from '../../src/clock.js';
import { FakeClock, type SharedTestApps, type TestApp, type TestAppOptions, basic, createSharedTestApps, createTestApp, listen } from '../helpers.js';
import { type Creds, subscribe } from '../sse.js';

type Subscriber = Awaited<ReturnType<typeof subscribe>>;
type Server = Awaited<ReturnType<typeof listen>>;

const waitFor = <T>(check: () => T, timeout = 10_000) => vi.waitFor(check, { timeout, interval: 10 });

let subscribers: Subscriber[] = [];
let cleanup: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const s of subscribers) await s.close();
  subscribers = [];
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function serve(t: TestApp): Promise<Server> {
  const server = await listen(t.app);
  cleanup.push(() => server.close());
  return server;
}

async function app(options: TestAppOptions = {}): Promise<{ t: TestApp; server: Server }> {
  const t = await createTestApp(options);
  cleanup.push(() => t.close());
  return { t, server: await serve(t) };
}

async function connect(server: Server, client: Creds, headers: Record<string, string> = {}): Promise<Subscriber> {
  const s = await subscribe(server.url, client, headers);
  subscribers.push(s);
  return s;
}

async function errorOf(s: Subscriber): Promise<{ error: string; error_description: string }> {
  await waitFor(() => expect(s.ended).toBe(true));
  return JSON.parse(s.text) as { error: string; error_description: string };
}

describe('stream caps (INTERFACE.md: 8 per client, 1,000 in all)', () => {
  it("refuses a client's 9th open stream with 429, Retry-After and an RFC 6749 error body", async () => {
    const { t, server } = await app();
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const other = await t.addClient('billing-api', { grants: ['client_credentials'] });
    const open = [];
    for (let i = 0; i < 8; i++) open.push(await connect(server, api));
    expect(open.map((s) => s.res.status)).toEqual(Array(8).fill(200));

    const ninth = await connect(server, api);
    expect(ninth.res.status).toBe(429);
    expect(Number(ninth.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(ninth.res.headers.get('cache-control')).toBe('no-store');
    expect((await errorOf(ninth)).error).toBe('temporarily_unavailable');
    expect(t.app.hub.streams.size).toBe(8);

    // the cap is the client's: another client still gets a stream
    expect((await connect(server, other)).res.status).toBe(200);
    // and a stream that closes makes room again
    await open[0]?.close();
    await waitFor(() => expect(t.app.hub.streams.size).toBe(8));
    expect((await connect(server, api)).res.status).toBe(200);

    const metrics = (await t.request.get('/metrics')).text;
    expect(metrics).toMatch(/^tollgate_sse_refused_total\{limit="client"\} 1$/m);
    expect(metrics).toMatch(/^tollgate_sse_refused_total\{limit="server"\} 0$/m);
  });

  it('refuses a stream past the server-wide cap, whichever client asks', async () => {
    const { t, server } = await app({ config: { denyList: { maxStreams: 3, maxStreamsPerClient: 2 } } });
    const a = await t.addClient('a-api', { grants: ['client_credentials'] });
    const b = await t.addClient('b-api', { grants: ['client_credentials'] });
    const c = await t.addClient('c-api', { grants: ['client_credentials'] });
    for (const client of [a, a, b]) expect((await connect(server, client)).res.status).toBe(200);
    for (const client of [b, c]) {
      const refused = await connect(server, client);
      expect(refused.res.status).toBe(429);
      expect(refused.res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await errorOf(refused)).error).toBe('temporarily_unavailable');
    }
    expect(t.app.hub.streams.size).toBe(3);
    expect((await t.request.get('/metrics')).text).toMatch(/^tollgate_sse_refused_total\{limit="server"\} 2$/m);
  });
});

describe('a stream ends with its credentials (INTERFACE.md)', () => {
  it('ends the streams of a client removed through this process at once, and only those', async () => {
    const { t, server } = await app();
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const other = await t.addClient('billing-api', { grants: ['client_credentials'] });
    const mine = [await connect(server, api), await connect(server, api)];
    const theirs = await connect(server, other);
    await t.app.services.clients.remove('todo-api');
    await waitFor(() => expect(mine.map((s) => s.ended)).toEqual([true, true]));
    await t.app.hub.recheck();
    expect(theirs.ended).toBe(false);
    expect(t.app.hub.streams.size).toBe(1);
    expect((await connect(server, api)).res.status).toBe(401);
  });

  describe('changed by another process on the same store (the CLI)', () => {
    let shared: SharedTestApps;
    async function pair() {
      shared = await createSharedTestApps(2);
      cleanup.push(() => shared.close());
      const [server, cli] = shared.apps as [TestApp, TestApp];
      const api = await cli.addClient('todo-api', { grants: ['client_credentials'] });
      const other = await cli.addClient('billing-api', { grants: ['client_credentials'] });
      return { server, cli, url: await serve(server), api, other };
    }

    it('ends the streams of a removed client (the server re-checks the clients of its streams every second)', async () => {
      const { server, cli, url, api, other } = await pair();
      const removed = await connect(url, api);
      const kept = await connect(url, other);
      expect([removed.res.status, kept.res.status]).toEqual([200, 200]);
      await cli.app.services.clients.remove('todo-api');
      // no call into the server's app: its own re-check must notice
      await waitFor(() => expect(removed.ended).toBe(true));
      await server.app.hub.recheck();
      expect(kept.ended).toBe(false);
      // the subscriber reconnects and is refused
      await waitFor(async () => expect((await fetch(`${url.url}/deny-list/events`, { headers: { Authorization: basic(api) } })).status).toBe(401));
    });

    it('ends the streams authenticated with a rotated secret; the new secret streams on', async () => {
      const { server, cli, url, api, other } = await pair();
      const old = [await connect(url, api), await connect(url, api)];
      const kept = await connect(url, other);
      const secret = await cli.app.services.clients.rotateSecret('todo-api');
      await waitFor(() => expect(old.map((s) => s.ended)).toEqual([true, true]));
      const rotated = { client_id: 'todo-api', client_secret: secret };
      // the server may still hold the client's row for up to a second (INTERFACE.md: within 2 s)
      const fresh = await waitFor(async () => {
        const s = await subscribe(url.url, rotated);
        subscribers.push(s);
        expect(s.res.status).toBe(200);
        return s;
      });
      await server.app.hub.recheck();
      expect(fresh.ended).toBe(false);
      expect(kept.ended).toBe(false);
      expect((await connect(url, api)).res.status).toBe(401);
    });
  });
});

describe('cursors beyond the newest entry (INTERFACE.md: 400 invalid_request)', () => {
  /** `count` live entries and a client to read them; the head is the feed's cursor after them. */
  async function withEntries(t: TestApp, count: number): Promise<{ head: number; api: Creds }> {
    const now = seconds(t.clock.now());
    await t.app.services.denyList.add(Array.from({ length: count }, (_, i) => ({ type: 'jti' as const, value: `j${i}`, expires_at: now + 60 })));
    await t.app.services.denyList.sync();
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const page = (await t.request.get('/deny-list').set('Authorization', basic(api))).body as { cursor: string; entries: unknown[] };
    expect(page.entries).toHaveLength(count);
    return { head: Number(page.cursor), api };
  }

  it('GET /deny-list?after= past the head is 400; the head itself is an empty page', async () => {
    const { t } = await app();
    const { head, api } = await withEntries(t, 3);
    const get = (after: number) => t.request.get(`/deny-list?after=${after}`).set('Authorization', basic(api));
    const past = await get(head + 1);
    expect(past.status).toBe(400);
    expect(past.body.error).toBe('invalid_request');
    expect(past.headers['cache-control']).toBe('no-store');
    expect((await get(head + 1_000_000)).status).toBe(400);
    const atHead = await get(head);
    expect(atHead.status).toBe(200);
    expect(atHead.body).toEqual({ cursor: String(head), entries: [] });
    expect((await get(head - 1)).body.entries).toHaveLength(1);
  });

  it('a stream from Last-Event-ID or ?after= past the head is 400; from the head it opens', async () => {
    const { t, server } = await app();
    const { head, api } = await withEntries(t, 2);
    const viaHeader = await connect(server, api, { 'Last-Event-ID': String(head + 1) });
    expect(viaHeader.res.status).toBe(400);
    expect((await errorOf(viaHeader)).error).toBe('invalid_request');
    const viaQuery = await fetch(`${server.url}/deny-list/events?after=${head + 1}`, { headers: { Authorization: basic(api) } });
    expect(viaQuery.status).toBe(400);
    expect(((await viaQuery.json()) as { error: string }).error).toBe('invalid_request');
    expect(t.app.hub.streams.size).toBe(0);

    const atHead = await connect(server, api, { 'Last-Event-ID': String(head) });
    expect(atHead.res.status).toBe(200);
    // nothing to catch up on; the next entry arrives live
    await t.app.services.denyList.add([{ type: 'jti', value: 'next', expires_at: seconds(t.clock.now()) + 60 }]);
    await t.app.services.denyList.sync();
    await waitFor(() => expect(atHead.deny().map((e) => e.entry.value)).toEqual(['next']));
    expect(Number(atHead.deny()[0]?.id)).toBeGreaterThan(head);
  });

  it('keeps a cursor valid after its entries were pruned, in a process that never saw them', async () => {
    // two apps on one store and one clock: the first writes and prunes; the second pulls only
    // after the prune, like a server started on a store whose every entry has expired since
    const shared = await createSharedTestApps(2, { clock: new FakeClock() });
    cleanup.push(() => shared.close());
    const [writer, fresh] = shared.apps as [TestApp, TestApp];
    const { head, api } = await withEntries(writer, 5);
    (writer.clock as FakeClock).advance(120);
    expect(await writer.app.services.denyList.prune()).toBe(5);
    const server = await serve(fresh);
    const get = (after: number) => fresh.request.get(`/deny-list?after=${after}`).set('Authorization', basic(api));
    // the table is empty now; the head is still the last id ever assigned
    expect((await get(0)).body.entries).toEqual([]);
    expect((await get(head)).status).toBe(200);
    expect((await get(head - 2)).status).toBe(200);
    expect((await get(head + 1)).status).toBe(400);
    expect((await connect(server, api, { 'Last-Event-ID': String(head) })).res.status).toBe(200);
    expect((await connect(server, api, { 'Last-Event-ID': String(head + 1) })).res.status).toBe(400);
    // new entries continue above the old head, and are served after it
    await writer.app.services.denyList.add([{ type: 'jti', value: 'after-prune', expires_at: seconds(writer.clock.now()) + 60 }]);
    const next = await get(head);
    expect(next.status).toBe(200);
    expect(next.body.entries).toEqual([expect.objectContaining({ value: 'after-prune' })]);
    expect(Number(next.body.cursor)).toBeGreaterThan(head);
  });
});
