// Password brute force (issue 5, INTERFACE.md "Throttling"): failed password grants are counted per
// (username, client address), per username and per address in a sliding window kept in the store;
// past a limit the grant answers 429 with Retry-After before argon2 runs. Issue 15: strangers
// cannot lock an owner out: past the username's limit, addresses the user signed in from in the
// last 30 days may still try (each within its own per-(username, address) limit), new ones may not.
import crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock, PASSWORD, type TestApp, basic, createSharedTestApps, createTestApp, listen, passwordGrant } from '../helpers.js';
import { LoginFailureRepository } from '../../src/store/loginFailures.js';
import { addressBucket } from '../../src/users/throttle.js';
import { createTestDatabase, describePostgres } from '../testDatabase.js';
import { sql } from 'kysely';

const WINDOW = 60;
const PER_USERNAME = 3;
const PER_IP = 5;
// the per-(username, address) limit is out of the way here unless a test says otherwise
const throttle = { windowSeconds: WINDOW, maxFailuresPerUsername: PER_USERNAME, maxFailuresPerIp: PER_IP, maxFailuresPerUsernameAndIp: 100 };

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

describe('no lockout by strangers (issue 15)', () => {
  const PER_USERNAME_AND_IP = 2;
  const USERNAME_LIMIT = 4;
  // the global limit above the per-(username, address) one: a stranger needs several addresses to reach it
  const policy = { windowSeconds: WINDOW, maxFailuresPerUsername: USERNAME_LIMIT, maxFailuresPerUsernameAndIp: PER_USERNAME_AND_IP, maxFailuresPerIp: 50 };
  const DAY = 86_400;
  const HOME = '192.0.2.10';
  const NEVER_SEEN = '192.0.2.99';

  let t: TestApp;
  let clock: FakeClock;
  let web: Client;
  const cleanup: Array<() => Promise<void>> = [];

  async function setup(overrides: Partial<typeof policy> = {}) {
    clock = new FakeClock();
    t = await createTestApp({ clock, config: { server: { trustProxy: true }, throttle: { ...policy, ...overrides } } });
    cleanup.push(() => t.close());
    await t.addUser('dave');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of cleanup.splice(0)) await close();
  });

  /** A password grant from `ip` (behind the trusted proxy); the right password unless told. */
  const from = (ip: string, username = 'dave', password = PASSWORD) => passwordGrant(t, web, username, password).set('X-Forwarded-For', ip);
  const stranger = (i: number) => `198.51.100.${i + 1}`;

  /** Counts the argon2 runs (verifyDummy, for unknown users, runs verify too). */
  function argon2Runs(): () => number {
    const verify = vi.spyOn(t.app.services.hasher, 'verify');
    return () => verify.mock.calls.length;
  }

  /** Wrong passwords from never-seen addresses, one each, until the username passes its limit. */
  async function strangersExhaust(username = 'dave') {
    for (let i = 0; i < USERNAME_LIMIT; i++) expect((await from(stranger(100 + i), username, 'a guess')).status).toBe(400);
    expectThrottled(await from(stranger(150), username, 'a guess'));
  }

  async function throttledDetails(): Promise<Array<Record<string, unknown>>> {
    const rows = await t.store.db.selectFrom('audit_events').select('detail').where('type', '=', 'sign_in.throttled').orderBy('id').execute();
    return rows.map((r) => JSON.parse(r.detail ?? '{}') as Record<string, unknown>);
  }

  it('lets dave sign in from an address he used before after a stranger guessed ten wrong passwords from another, and refuses a never-seen address without running argon2', async () => {
    // the sequence: one address may reach the username's limit on its own (as with the defaults, 10 and 10)
    await setup({ maxFailuresPerUsernameAndIp: USERNAME_LIMIT });
    expect((await from(HOME)).status).toBe(200);
    clock.advance(DAY);

    const attacker = '203.0.113.66';
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await from(attacker, 'dave', `guess-${i}`)).status);
    expect(statuses).toEqual([...Array<number>(USERNAME_LIMIT).fill(400), ...Array<number>(12 - USERNAME_LIMIT).fill(429)]);

    const runs = argon2Runs();
    const home = await from(HOME);
    expect(home.status).toBe(200);
    expect(home.body.access_token).toEqual(expect.any(String));
    expect(runs()).toBe(1);

    // the right password from an address dave never signed in from: refused before argon2
    const elsewhere = await from(NEVER_SEEN);
    expectThrottled(elsewhere, WINDOW);
    expect(elsewhere.body.access_token).toBeUndefined();
    expect(runs()).toBe(1);
    expect((await throttledDetails()).at(-1)).toEqual({ limit: 'per_username' });
  });

  it('lets no more than maxFailuresPerUsername guesses from never-seen addresses reach argon2, however many addresses they come from', async () => {
    await setup();
    await t.addUser('erin');
    const runs = argon2Runs();
    for (const username of ['dave', 'nobody-by-this-name']) {
      const before = runs();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 20; i++) {
          const res = await from(stranger(i), username, `guess-${round}-${i}`);
          expect([400, 429]).toContain(res.status);
        }
      }
      expect(runs() - before).toBe(USERNAME_LIMIT);
    }
    // another user is not affected
    expect((await from(stranger(0), 'erin')).status).toBe(200);
  });

  it('bounds a burst of parallel guesses from 20 addresses by maxFailuresPerUsername too (each guess is counted before it is checked)', async () => {
    clock = new FakeClock();
    // slow enough hashing that the whole burst arrives before the first verdict
    const slow = await createTestApp({ clock, config: { server: { trustProxy: true }, throttle: policy, passwords: { memoryCostKiB: 19456, timeCost: 2, maxConcurrentHashes: 2, maxQueuedHashes: 64 } } });
    cleanup.push(() => slow.close());
    await slow.addUser('dave');
    const client = await slow.addClient('web', { grants: ['password'] });
    const server = await listen(slow.app);
    cleanup.unshift(() => server.close());
    const verify = vi.spyOn(slow.app.services.hasher, 'verify');
    const guess = (i: number) =>
      fetch(`${server.url}/token`, { method: 'POST', headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': stranger(i) }, body: 'grant_type=password&username=dave&password=guess-guess' });
    const statuses = (await Promise.all(Array.from({ length: 20 }, (_, i) => guess(i)))).map((r) => r.status);
    const tried = statuses.filter((s) => s === 400).length;
    expect(tried).toBeGreaterThan(0);
    expect(tried).toBeLessThanOrEqual(USERNAME_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20 - tried);
    expect(verify).toHaveBeenCalledTimes(tried);
  });

  it('bounds the guesses for one username by maxFailuresPerUsername + maxFailuresPerUsernameAndIp for each address the user signed in from', async () => {
    await setup();
    const known = ['192.0.2.1', '192.0.2.2'];
    for (const ip of known) expect((await from(ip)).status).toBe(200);
    const runs = argon2Runs();
    // strangers first, so that the known addresses add all they may: the bound is reached exactly
    for (let round = 0; round < 3; round++) for (let i = 0; i < 20; i++) await from(stranger(i), 'dave', 'a guess');
    for (let round = 0; round < 5; round++) for (const ip of known) await from(ip, 'dave', 'a guess');
    expect(runs()).toBe(USERNAME_LIMIT + known.length * PER_USERNAME_AND_IP);
    // everyone is refused now, the owner's addresses included, until the window lets failures go
    for (const ip of [...known, NEVER_SEEN]) expectThrottled(await from(ip));
    expect(runs()).toBe(USERNAME_LIMIT + known.length * PER_USERNAME_AND_IP);
    clock.advance(WINDOW);
    expect((await from(NEVER_SEEN)).status).toBe(200);
  });

  it('lets a success from a known address past the username limit through, clearing that address counter but not the username counter, so strangers stay out', async () => {
    await setup();
    expect((await from(HOME)).status).toBe(200);
    await strangersExhaust();

    expect((await from(HOME, 'dave', 'a typo')).status).toBe(400);
    expect((await from(HOME)).status).toBe(200);
    // the success cleared HOME's own counter: the full allowance again
    for (let i = 0; i < PER_USERNAME_AND_IP; i++) expect((await from(HOME, 'dave', `typo-${i}`)).status).toBe(400);
    expectThrottled(await from(HOME));
    // not the username's (past its limit): a stranger's guesses are still refused
    expectThrottled(await from(NEVER_SEEN, 'dave', 'a guess'));
    expect((await throttledDetails()).slice(-2)).toEqual([{ limit: 'per_username_and_ip' }, { limit: 'per_username' }]);

    clock.advance(WINDOW);
    expect((await from(NEVER_SEEN)).status).toBe(200);
  });

  it('clears the username counter on a success while it is below its limit', async () => {
    await setup();
    for (let i = 0; i < USERNAME_LIMIT - 1; i++) expect((await from(stranger(i), 'dave', 'a guess')).status).toBe(400);
    expect((await from(HOME)).status).toBe(200);
    // USERNAME_LIMIT - 1 more strangers' failures are allowed again before the limit
    for (let i = 0; i < USERNAME_LIMIT; i++) expect((await from(stranger(10 + i), 'dave', 'a guess')).status).toBe(400);
    expectThrottled(await from(NEVER_SEEN));
  });

  it('counts IPv6 addresses per /64 prefix: two addresses in one /64 share their counters, another /64 does not', async () => {
    await setup({ maxFailuresPerIp: 3 });
    await t.addUser('erin');
    // per (username, address)
    expect((await from('2001:db8:1:2::1', 'dave', 'a guess')).status).toBe(400);
    expect((await from('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 'dave', 'a guess')).status).toBe(400);
    expectThrottled(await from('2001:DB8:1:2:0:0:0:FFFF'));
    expect((await from('2001:db8:1:3::1')).status).toBe(200);
    // per address: a third failure from the /64, for another name, reaches the address limit
    expect((await from('2001:db8:1:2::7', 'someone-else', 'a guess')).status).toBe(400);
    expectThrottled(await from('2001:db8:1:2::8', 'erin'));
    expect((await throttledDetails()).map((d) => d.limit)).toEqual(['per_username_and_ip', 'per_ip']);
    expect((await from('2001:db8:1:4::8', 'erin')).status).toBe(200);
  });

  it('knows an address by its /64: past the username limit, another address in the /64 dave signed in from may still sign in', async () => {
    await setup();
    expect((await from('2001:db8:aa:bb::1')).status).toBe(200);
    await strangersExhaust();
    // privacy extensions (RFC 8981) change the interface identifier, not the prefix
    expect((await from('2001:db8:aa:bb:1234:5678:9abc:def0')).status).toBe(200);
    expectThrottled(await from('2001:db8:aa:bc::1'));
  });

  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:201', '192.0.2.1'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:DB8:0:0:1:2:3:4', '2001:db8:0:0::/64'],
    ['2001:0db8:00aa:0bb0::', '2001:db8:aa:bb0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (ip, bucket) => {
    expect(addressBucket(ip)).toBe(bucket);
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address', async () => {
    await setup();
    expect((await from(HOME)).status).toBe(200);
    await strangersExhaust();
    expect((await from(`::ffff:${HOME}`)).status).toBe(200);
  });

  it('forgets an address 30 days after the last successful sign-in from it, and prunes it', async () => {
    await setup();
    const stale = '192.0.2.20';
    expect((await from(HOME)).status).toBe(200);
    expect((await from(stale)).status).toBe(200);
    clock.advance(20 * DAY);
    expect((await from(HOME)).status).toBe(200); // the 30 days start again
    clock.advance(11 * DAY);

    await strangersExhaust();
    expect((await from(HOME)).status).toBe(200);
    expectThrottled(await from(stale));

    await t.app.services.throttle.prune();
    const rows = await t.store.db.selectFrom('known_addresses').select('address').execute();
    expect(rows.map((r) => r.address)).toEqual([HOME]);
  });

  it('remembers known addresses in the store, never a username in the counters', async () => {
    await setup();
    expect((await from('2001:db8:aa:bb::1')).status).toBe(200);
    expect((await from(HOME, 'dave', 'a guess')).status).toBe(400);
    const typedPassword = 'Tr0ub4dor&3-typed-into-the-username-field';
    expect((await from(HOME, typedPassword, 'a guess')).status).toBe(400);
    const known = await t.store.db.selectFrom('known_addresses').selectAll().execute();
    expect(known).toEqual([{ user_id: expect.any(String), address: '2001:db8:aa:bb::/64', last_success_at: expect.anything() }]);
    const keys = (await t.store.db.selectFrom('login_failures').select('key').execute()).map((r) => r.key);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).not.toContain('dave');
      expect(key.toLowerCase()).not.toContain(typedPassword.toLowerCase());
    }
  });
});

// PostgreSQL hands out a row's id when it is inserted, not when it commits: a guess that counts
// "every failure before my row" could miss an earlier guess still committing, and both pass.
describePostgres('login throttle on PostgreSQL', () => {
  it('counts a guess whose row is not committed yet: the next guess waits for it', async () => {
    // two instances on one database; guess 1 stops right after inserting its row, inside its
    // transaction, until guess 2 has either counted (the race) or is seen waiting for guess 1
    const shared = await createSharedTestApps(2, { dialect: 'postgres', clock: new FakeClock(), config: { throttle: { ...throttle, maxFailuresPerIp: 1000 } } });
    try {
      const [a, b] = shared.apps as [TestApp, TestApp];
      await a.addUser('alice');
      const client = await a.addClient('web', { grants: ['password'] });
      for (let i = 0; i < PER_USERNAME - 1; i++) await fail(a, client, 'alice', '192.0.2.1');
      let inserted!: () => void;
      const rowInserted = new Promise<void>((resolve) => (inserted = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const add = LoginFailureRepository.prototype.add;
      let adds = 0;
      vi.spyOn(LoginFailureRepository.prototype, 'add').mockImplementation(async function (this: LoginFailureRepository, keys, at) {
        const ids = await add.call(this, keys, at);
        if (++adds === 1) {
          inserted();
          await released;
        }
        return ids;
      });
      // before the release, only guess 2 can count
      let counted!: () => void;
      const secondCounted = new Promise<void>((resolve) => (counted = resolve));
      const recent = LoginFailureRepository.prototype.recent;
      vi.spyOn(LoginFailureRepository.prototype, 'recent').mockImplementation(function (this: LoginFailureRepository, ...args) {
        counted();
        return recent.apply(this, args);
      });
      let watching = true;
      const secondWaits = (async () => {
        while (watching) {
          const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`.execute(a.store.db);
          if ((rows[0]?.n ?? 0) > 0) return;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();

      const first = a.app.services.throttle.begin('alice', '192.0.2.1');
      await rowInserted;
      const second = b.app.services.throttle.begin('alice', '198.51.100.7');
      await Promise.race([secondCounted, secondWaits]);
      watching = false;
      release();
      const [one, two] = await Promise.all([first, second]);
      // the limit-th guess gets through; the next one counts it and is refused
      expect(one.retryAfter).toBe(0);
      expect(two.retryAfter).toBeGreaterThan(0);
      expect(two.limit).toBe('per_username');
    } finally {
      vi.restoreAllMocks();
      await shared.close();
    }
  });
});
