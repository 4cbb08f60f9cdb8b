// Password brute force (issue 5, INTERFACE.md "Throttling"): failed password grants are counted per
// username and per client IP in a sliding window kept in the store; past a limit the grant answers
// 429 with Retry-After before argon2 runs.
import crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock, PASSWORD, type TestApp, basic, createTestApp, listen, passwordGrant } from '../helpers.js';
import { createTestDatabase } from '../testDatabase.js';

const WINDOW = 60;
const PER_USERNAME = 3;
const PER_IP = 5;
const throttle = { windowSeconds: WINDOW, maxFailuresPerUsername: PER_USERNAME, maxFailuresPerIp: PER_IP };

type Client = { client_id: string; client_secret?: string };

function expectRfc6749Error(res: { status: number; body: Record<string, unknown>; headers: Record<string, string> }, status: number) {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body).sort()).toEqual(['error', 'error_description']);
  expect(typeof res.body.error).toBe('string');
  expect(typeof res.body.error_description).toBe('string');
  expect(res.headers['cache-control']).toContain('no-store');
}

function expectThrottled(res: { status: number; body: Record<string, unknown>; headers: Record<string, string> }, retryAfter?: number) {
  expectRfc6749Error(res, 429);
  const header = Number(res.headers['retry-after']);
  expect(Number.isInteger(header) && header >= 1).toBe(true);
  if (retryAfter !== undefined) expect(header).toBe(retryAfter);
}

async function fail(t: TestApp, client: Client, username: string, ip?: string) {
  const req = passwordGrant(t, client, username, 'not the password');
  const res = ip ? await req.set('X-Forwarded-For', ip) : await req;
  expect(res.status).toBe(400);
  expect(res.body.error).toBe('invalid_grant');
  return res;
}

describe('login throttle', () => {
  let t: TestApp;
  let clock: FakeClock;
  let web: Client;

  const cleanup: Array<() => Promise<void>> = [];

  async function setup(config: Record<string, unknown> = {}) {
    clock = new FakeClock();
    t = await createTestApp({ clock, config: { throttle, ...config } });
    cleanup.push(() => t.close());
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of cleanup.splice(0)) await close();
  });

  describe('per username', () => {
    it('answers 429 with Retry-After and an RFC 6749 error body once the username reaches its limit, without running argon2', async () => {
      await setup();
      for (let i = 0; i < PER_USERNAME; i++) await fail(t, web, 'alice');
      const verify = vi.spyOn(t.app.services.hasher, 'verify');
      const dummy = vi.spyOn(t.app.services.hasher, 'verifyDummy');

      // even the right password: the limit holds until the window lets a failure go
      const res = await passwordGrant(t, web, 'alice');
      expectThrottled(res, WINDOW);
      expect(res.body.access_token).toBeUndefined();
      expect(verify).not.toHaveBeenCalled();
      expect(dummy).not.toHaveBeenCalled();
    });

    it('lets the password grant through while the username is below its limit', async () => {
      await setup();
      for (let i = 0; i < PER_USERNAME - 1; i++) await fail(t, web, 'alice');
      const res = await passwordGrant(t, web, 'alice');
      expect(res.status).toBe(200);
      expect(res.body.access_token).toEqual(expect.any(String));
    });

    it('does not throttle another username from the same IP while the IP is below its own limit', async () => {
      await setup();
      await t.addUser('bob');
      for (let i = 0; i < PER_USERNAME; i++) await fail(t, web, 'alice');
      expectThrottled(await passwordGrant(t, web, 'alice'));
      expect((await passwordGrant(t, web, 'bob')).status).toBe(200);
    });

    it('counts unknown usernames too, and throttles them with the same answer, so the limiter does not reveal which accounts exist', async () => {
      await setup({ throttle: { ...throttle, maxFailuresPerIp: 100 } });
      for (let i = 0; i < PER_USERNAME; i++) await fail(t, web, 'alice');
      for (let i = 0; i < PER_USERNAME; i++) await fail(t, web, 'mallory-does-not-exist');
      const dummy = vi.spyOn(t.app.services.hasher, 'verifyDummy');
      const known = await passwordGrant(t, web, 'alice');
      const unknown = await passwordGrant(t, web, 'mallory-does-not-exist');
      expectThrottled(known, WINDOW);
      expectThrottled(unknown, WINDOW);
      expect(unknown.body).toEqual(known.body);
      expect(dummy).not.toHaveBeenCalled();
    });

    it('clears the username counter on a successful sign-in', async () => {
      await setup({ throttle: { ...throttle, maxFailuresPerIp: 100 } });
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < PER_USERNAME - 1; i++) await fail(t, web, 'alice');
        expect((await passwordGrant(t, web, 'alice')).status).toBe(200);
      }
      // six failures in the window, none throttled: each success started the count again
      await fail(t, web, 'alice');
    });

    it('does not clear the IP counter on a successful sign-in', async () => {
      await setup();
      await t.addUser('bob');
      for (let i = 0; i < PER_USERNAME - 1; i++) await fail(t, web, 'alice');
      expect((await passwordGrant(t, web, 'alice')).status).toBe(200);
      for (let i = 0; i < PER_IP - (PER_USERNAME - 1); i++) await fail(t, web, `guess-${i}`);
      // the IP has PER_IP failures: bob, who never failed, is refused from here too
      expectThrottled(await passwordGrant(t, web, 'bob'));
    });
  });

  describe('parallel guesses', () => {
    it('counts a guess before checking it, so a burst of parallel guesses gets no more than the limit past argon2', async () => {
      // production-like hashing: slow enough that the whole burst arrives before the first verdict
      await setup({ throttle: { ...throttle, maxFailuresPerIp: 1000 }, passwords: { memoryCostKiB: 19456, timeCost: 2, maxConcurrentHashes: 2, maxQueuedHashes: 64 } });
      const server = await listen(t.app);
      cleanup.unshift(() => server.close());
      const verify = vi.spyOn(t.app.services.hasher, 'verify');
      const guess = () => fetch(`${server.url}/token`, { method: 'POST', headers: { authorization: basic(web), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=alice&password=guess-guess' });
      const statuses = (await Promise.all(Array.from({ length: 20 }, guess))).map((r) => r.status);
      const tried = statuses.filter((s) => s === 400).length;
      expect(tried).toBeGreaterThan(0);
      expect(tried).toBeLessThanOrEqual(PER_USERNAME);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20 - tried);
      expect(verify).toHaveBeenCalledTimes(tried);
    });
  });

  describe('per client IP', () => {
    it('throttles an IP that spreads its failures over many usernames (X-Forwarded-For believed with trustProxy)', async () => {
      await setup({ server: { trustProxy: true } });
      for (let i = 0; i < PER_IP; i++) await fail(t, web, `victim-${i}`, '198.51.100.1');
      const verify = vi.spyOn(t.app.services.hasher, 'verify');
      expectThrottled(await passwordGrant(t, web, 'alice').set('X-Forwarded-For', '198.51.100.1'), WINDOW);
      expect(verify).not.toHaveBeenCalled();
      // another address behind the same proxy is a different client
      expect((await passwordGrant(t, web, 'alice').set('X-Forwarded-For', '198.51.100.2')).status).toBe(200);
    });

    it('believes only the address the proxy appended, so a client cannot dodge its limit with a forged X-Forwarded-For', async () => {
      await setup({ server: { trustProxy: true } });
      for (let i = 0; i < PER_IP; i++) await fail(t, web, `victim-${i}`, `203.0.113.${i}, 198.51.100.1`);
      expectThrottled(await passwordGrant(t, web, 'alice').set('X-Forwarded-For', '203.0.113.99, 198.51.100.1'));
    });

    it('ignores X-Forwarded-For without trustProxy: every request counts against the socket address', async () => {
      await setup({ server: { trustProxy: false } });
      for (let i = 0; i < PER_IP; i++) await fail(t, web, `victim-${i}`, `198.51.100.${i}`);
      expectThrottled(await passwordGrant(t, web, 'alice').set('X-Forwarded-For', '198.51.100.200'));
      const rows = await t.store.db.selectFrom('audit_events').select('ip').where('type', '=', 'sign_in.failure').execute();
      expect(rows).toHaveLength(PER_IP);
      for (const row of rows) expect(row.ip).not.toMatch(/^198\.51\.100\./);
    });
  });

  describe('sliding window', () => {
    it('lets an attempt through once the oldest counted failure leaves the window, and Retry-After says when', async () => {
      await setup();
      await fail(t, web, 'alice'); // t = 0
      clock.advance(20);
      await fail(t, web, 'alice'); // t = 20
      clock.advance(20);
      await fail(t, web, 'alice'); // t = 40
      clock.advance(10);
      expectThrottled(await passwordGrant(t, web, 'alice'), 10); // t = 50: the first failure leaves at 60
      clock.advance(9);
      expectThrottled(await passwordGrant(t, web, 'alice'), 1);
      clock.advance(1);
      await fail(t, web, 'alice'); // t = 60: allowed (and counted)
      expectThrottled(await passwordGrant(t, web, 'alice'), 20); // failures at 20, 40, 60: the one at 20 leaves at 80
      clock.advance(20);
      expect((await passwordGrant(t, web, 'alice')).status).toBe(200);
    });

    it('keeps the counters in the store, so a restart on the same database does not reset them', async () => {
      const database = await createTestDatabase();
      const kek = crypto.randomBytes(32);
      clock = new FakeClock();
      const first = database.open();
      const before = await createTestApp({ store: first, kek, clock, config: { throttle } });
      let after: TestApp | undefined;
      const second = database.open();
      try {
        await before.addUser('alice');
        const client = await before.addClient('web', { grants: ['password'] });
        for (let i = 0; i < PER_USERNAME; i++) await fail(before, client, 'alice');
        await before.close();
        await first.close();

        after = await createTestApp({ store: second, kek, clock, config: { throttle } });
        expectThrottled(await passwordGrant(after, client, 'alice', PASSWORD), WINDOW);
        clock.advance(WINDOW);
        expect((await passwordGrant(after, client, 'alice', PASSWORD)).status).toBe(200);
      } finally {
        await after?.close();
        await second.close();
        await first.close().catch(() => undefined);
        await database.drop();
      }
    });
  });
});
