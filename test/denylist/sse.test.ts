// GET /deny-list/events: the feed pushed as Server-Sent Events, against a real listening server.
// One `deny` event per entry with `id:` = its cursor; resumable with Last-Event-ID; heartbeat
// comments; entries written by another process reach subscribers through the periodic sync.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { seconds } from '../../src/clock.js';
import type { DenyList } from '../../src/denylist/denyList.js';
import { openStore } from '../../src/store/database.js';
import { DenyListRepository } from '../../src/store/denyList.js';
import { FakeClock, type TestApp, type TestAppOptions, basic, createTestApp, decodeJwt, listen, passwordGrant } from '../helpers.js';
import { type Creds, subscribe } from '../sse.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

type Subscriber = Awaited<ReturnType<typeof subscribe>>;

/**
 * Counts the app's live deny-list subscriptions (each open stream holds one) by wrapping
 * `subscribe`: a stream that ends must leave none behind.
 */
function countSubscriptions(denyList: DenyList): () => number {
  let live = 0;
  const subscribe = denyList.subscribe.bind(denyList);
  denyList.subscribe = (listener) => {
    const unsubscribe = subscribe(listener);
    let subscribed = true;
    live++;
    return () => {
      if (subscribed) live--;
      subscribed = false;
      return unsubscribe();
    };
  };
  return () => live;
}

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'tollgate'), ...args], { cwd: ROOT, env: { ...base, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('GET /deny-list/events', () => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let web: Creds;
  let api: Creds;
  let subscribers: Subscriber[] = [];
  let cleanup: Array<() => unknown> = [];
  let subscriptions: () => number;

  async function start(options: TestAppOptions = {}) {
    t = await createTestApp(options);
    subscriptions = countSubscriptions(t.app.services.denyList);
    server = await listen(t.app);
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api' });
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  }
  async function connect(headers: Record<string, string> = {}, client: Creds = api) {
    const s = await subscribe(server.url, client, headers);
    subscribers.push(s);
    return s;
  }
  const signIn = async () => (await passwordGrant(t, web, 'alice')).body as { access_token: string; refresh_token: string };
  const revoke = (token: string) => t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token });
  const jti = (token: string) => (decodeJwt(token).payload as { jti: string }).jti;
  const waitFor = <T>(check: () => T, timeout = 5000, interval = 10) => vi.waitFor(check, { timeout, interval });

  afterEach(async () => {
    for (const s of subscribers) await s.close();
    subscribers = [];
    await server?.close();
    await t?.close();
    for (const c of cleanup) await c();
    cleanup = [];
  });

  describe('the stream', () => {
    it('needs a confidential client', async () => {
      await start();
      await t.addClient('spa', { public: true, grants: ['password'] });
      const anonymous = await fetch(`${server.url}/deny-list/events`);
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as { error: string }).error).toBe('invalid_client');
      const wrong = await connect({}, { client_id: 'todo-api', client_secret: 'tgs_nope' });
      expect(wrong.res.status).toBe(401);
      const spa = await fetch(`${server.url}/deny-list/events?client_id=spa`);
      expect(spa.status).toBe(401);
      expect(subscriptions()).toBe(0);
    });

    it('is text/event-stream, never cached, and opens with a retry hint', async () => {
      await start();
      const s = await connect();
      expect(s.res.status).toBe(200);
      expect(s.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(s.res.headers.get('cache-control')).toBe('no-store');
      await waitFor(() => expect(s.text).toMatch(/^retry: \d+\n\n/));
    });

    it('delivers a revocation as an `event: deny` whose id is the feed cursor and whose data is the entry', async () => {
      await start();
      const tokens = await signIn();
      const s = await connect();
      await revoke(tokens.access_token);
      await waitFor(() => expect(s.deny()).toHaveLength(1));
      const { exp } = decodeJwt(tokens.access_token).payload as { exp: number };
      const feed = (await t.request.get('/deny-list').set('Authorization', basic(api))).body;
      expect(s.deny()).toEqual([{ id: feed.cursor, entry: { type: 'jti', value: jti(tokens.access_token), expires_at: exp + t.config.accessTokens.clockToleranceSeconds } }]);
      expect(feed.entries).toEqual([s.deny()[0]?.entry]);
    });

    it('delivers refresh-family and user-wide entries too', async () => {
      await start();
      const tokens = await signIn();
      const s = await connect();
      await revoke(tokens.refresh_token);
      await t.app.services.users.logout('alice');
      await waitFor(() => expect(s.deny().map((e) => e.entry.type)).toEqual(['sid', 'sub']));
      expect(s.deny()[1]?.entry).toEqual({ type: 'sub', value: expect.any(String), issued_before: seconds(t.clock.now()), expires_at: expect.any(Number) });
    });

    it('sends heartbeat comments while nothing happens', async () => {
      await start({ config: { denyList: { heartbeatSeconds: 1 } } });
      const s = await connect();
      await waitFor(() => expect(s.comments().length).toBeGreaterThan(0), 10_000);
      expect(s.deny()).toEqual([]);
    });

    it('answers 400 invalid_request for a Last-Event-ID that is not a cursor', async () => {
      await start();
      for (const id of ['abc', '-1', '1.5', '9'.repeat(20)]) {
        const s = await connect({ 'Last-Event-ID': id });
        expect(s.res.status).toBe(400);
        await waitFor(() => expect(s.ended).toBe(true));
        expect((JSON.parse(s.text) as { error: string }).error).toBe('invalid_request');
      }
      expect(subscriptions()).toBe(0);
    });

    it('forgets a subscriber that disconnects', async () => {
      await start();
      const s = await connect();
      await waitFor(() => expect(subscriptions()).toBe(1));
      await s.close();
      await waitFor(() => expect(subscriptions()).toBe(0));
      expect(t.app.hub.streams.size).toBe(0);
    });

    it('cuts off a live subscriber that stops reading instead of queueing for it without bound', async () => {
      await start();
      const paused = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(`${server.url}/deny-list/events`, { headers: { Authorization: basic(api) } }, (res) => {
          res.pause();
          resolve(res);
        });
        req.on('error', reject);
      });
      cleanup.push(() => paused.destroy());
      const reader = await connect();
      expect(paused.statusCode).toBe(200);
      await waitFor(() => expect(subscriptions()).toBe(2));
      // far more than MAX_QUEUED_BYTES plus whatever the socket buffers can hold
      const big = 'x'.repeat(16 * 1024);
      const expiresAt = seconds(t.clock.now()) + 600;
      for (let batch = 0; batch < 40 && subscriptions() > 1; batch++) {
        await t.app.services.denyList.add(Array.from({ length: 50 }, (_, i) => ({ type: 'jti' as const, value: `${batch}-${i}-${big}`, expires_at: expiresAt })));
        await t.app.services.denyList.sync();
        await new Promise((resolve) => setImmediate(resolve));
      }
      // megabytes go through the reading subscriber: on a loaded 2-core machine that takes a while,
      // so these wait for the events with a generous deadline, polled rarely (each check parses it all)
      await waitFor(() => expect(subscriptions()).toBe(1), 15_000, 50);
      // the subscriber that reads is not affected
      await waitFor(() => expect(reader.deny().length).toBeGreaterThan(50), 15_000, 200);
      expect(reader.ended).toBe(false);
    });

    it('ends every stream with a retry hint when the app closes', async () => {
      await start();
      const a = await connect();
      const b = await connect();
      await waitFor(() => expect(a.text.length * b.text.length).toBeGreaterThan(0));
      const before = [a.text.length, b.text.length];
      await t.app.close();
      await waitFor(() => expect(a.ended && b.ended).toBe(true));
      expect(a.text.slice(before[0])).toMatch(/retry: \d+\n\n$/);
      expect(b.text.slice(before[1])).toMatch(/retry: \d+\n\n$/);
      expect(subscriptions()).toBe(0);
    });
  });

  describe('resuming', () => {
    it('sends a new subscriber every live entry first, then new ones as they come', async () => {
      await start();
      const one = await signIn();
      await revoke(one.access_token);
      const s = await connect();
      await waitFor(() => expect(s.deny()).toHaveLength(1));
      const two = await signIn();
      await revoke(two.access_token);
      await waitFor(() => expect(s.deny().map((e) => e.entry.value)).toEqual([jti(one.access_token), jti(two.access_token)]));
    });

    it('resumes after Last-Event-ID: only newer entries, then live ones', async () => {
      await start();
      const tokens = [await signIn(), await signIn(), await signIn()];
      await revoke(tokens[0]?.access_token ?? '');
      const first = await connect();
      await waitFor(() => expect(first.deny()).toHaveLength(1));
      const lastId = first.deny()[0]?.id ?? '';
      await first.close();

      await revoke(tokens[1]?.access_token ?? '');
      const resumed = await connect({ 'Last-Event-ID': lastId });
      await waitFor(() => expect(resumed.deny()).toHaveLength(1));
      expect(resumed.deny()[0]?.entry.value).toBe(jti(tokens[1]?.access_token ?? ''));
      expect(Number(resumed.deny()[0]?.id)).toBeGreaterThan(Number(lastId));

      await revoke(tokens[2]?.access_token ?? '');
      await waitFor(() => expect(resumed.deny().map((e) => e.entry.value)).toEqual([tokens[1], tokens[2]].map((x) => jti(x?.access_token ?? ''))));
    });

    it('misses nothing and repeats nothing when entries arrive while a subscriber catches up', async () => {
      await start();
      const denyList = t.app.services.denyList;
      const add = async (value: string) => {
        await denyList.add([{ type: 'jti', value, expires_at: seconds(t.clock.now()) + 600 }]);
        await denyList.sync();
      };
      const backlog = Array.from({ length: 50 }, (_, i) => `backlog-${i}`);
      for (const value of backlog) await add(value);
      // Land writes inside the catch-up, deterministically: one just after the first backlog read
      // (the next read sees it, and so does the live listener) and one just after the final, empty
      // read (only the live listener sees it, while the stream is not live yet).
      const read = denyList.events.bind(denyList);
      let calls = 0;
      const during: string[] = [];
      vi.spyOn(denyList, 'events').mockImplementation(async (after) => {
        const page = await read(after);
        calls++;
        if (during.length < 2 && (calls === 1 || page.length === 0)) {
          during.push(`during-${during.length}`);
          await add(during[during.length - 1] as string);
        }
        return page;
      });
      const s = await connect();
      await add('live');
      const expected = [...backlog, ...during, 'live'];
      expect(during).toHaveLength(2);
      await waitFor(() => expect(s.deny().map((e) => e.entry.value)).toEqual(expected));
      const ids = s.deny().map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('leaves out entries that have already expired', async () => {
      await start();
      const now = seconds(t.clock.now());
      await t.app.services.denyList.add([
        { type: 'jti', value: 'expired', expires_at: now },
        { type: 'jti', value: 'live', expires_at: now + 60 },
      ]);
      await t.app.services.denyList.sync();
      const s = await connect();
      await waitFor(() => expect(s.deny().map((e) => e.entry.value)).toEqual(['live']));
    });
  });

  describe('entries written by another process (shared SQLite file, jobs on)', () => {
    let dir: string;
    const shared = async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-sse-'));
      cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'tollgate.db');
      // the CLI stamps entries with the real time, so this app's clock starts there too
      await start({ jobs: true, clock: new FakeClock(Date.now()), config: { database: { url: file } } });
      return file;
    };

    it('pushes an entry inserted through another store connection, via the periodic sync', async () => {
      const file = await shared();
      const other = openStore(file);
      cleanup.push(() => other.close());
      const s = await connect();
      await new DenyListRepository(other.db).insert([{ type: 'jti', value: 'from-elsewhere', expires_at: seconds(t.clock.now()) + 60 }], t.clock.now());
      await waitFor(() => expect(s.deny().map((e) => e.entry)).toEqual([{ type: 'jti', value: 'from-elsewhere', expires_at: seconds(t.clock.now()) + 60 }]));
    });

    it('pushes a `tollgate users logout` from the CLI to subscribers within 2 seconds (INTERFACE.md)', async () => {
      const file = await shared();
      const alice = (await t.app.services.users.show('alice')).id;
      const s = await connect();
      const result = await cli(['users', 'logout', 'alice', '--database', file], { TOLLGATE_KEY_ENCRYPTION_KEY: t.config.keys.encryptionKey ?? '' });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // the promise is about the running server, so the clock starts when the CLI has committed
      await waitFor(() => expect(s.deny().map((e) => e.entry)).toEqual([expect.objectContaining({ type: 'sub', value: alice })]), 2000);
    });
  });
});
