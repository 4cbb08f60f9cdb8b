// Issue 8: refresh rotation with a retry grace window. Grace 0 is strict reuse detection (RFC 9700
// §4.14.2); within a grace window the same client presenting a spent token again gets the very
// same successor back, so a lost response or two tabs refreshing at once never log a user out.
import { afterEach, describe, expect, it } from 'vitest';
import defaults from '../../../config/default.json' with { type: 'json' };
import { CROSS_PROCESS_TOLERANCE_MS } from '../../../src/tokens/refreshFamilies.js';
import type { ProtocolEvents } from '../../../src/oauth/events.js';
import { RefreshTokenMinter } from '../../../src/tokens/refreshTokens.js';
import { FakeClock, type TestApp, basic, createSharedTestApps, createTestApp, decodeJwt, listen, passwordGrant, refreshGrant, testConfig } from '../../helpers.js';

type Client = { client_id: string; client_secret?: string };
type TokenBody = { access_token: string; refresh_token: string; scope: string; error?: string };

const SCOPE = 'todos:read todos:write';

let t: TestApp;
let clock: FakeClock;
let open: TestApp | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/** An app whose global grace is `global` and a client `web` with its own grace (undefined: the global one). */
async function setup(global: number, clientGrace?: number, extraConfig: Record<string, unknown> = {}, start?: number) {
  clock = new FakeClock(start);
  t = await createTestApp({ clock, config: { refreshTokens: { retryGraceSeconds: global, ...extraConfig } } });
  open = t;
  await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
  const web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: SCOPE, audience: 'todo-api', ...(clientGrace === undefined ? {} : { refreshGraceSeconds: clientGrace }) });
  return web;
}

async function signIn(client: Client) {
  const res = await passwordGrant(t, client, 'alice');
  expect(res.status).toBe(200);
  return res.body as TokenBody;
}

async function refresh(client: Client, token: string, extra: Record<string, string> = {}) {
  const res = await refreshGrant(t, client, token, extra);
  return { status: res.status, body: res.body as TokenBody };
}

const sidOf = (body: { access_token: string }) => String(decodeJwt(body.access_token).payload.sid);
const family = (sid: string) => t.store.db.selectFrom('refresh_token_families').selectAll().where('id', '=', sid).executeTakeFirstOrThrow();
/** Refresh tokens of the family that can still be used: the issue requires exactly one. */
const live = async (sid: string) => (await t.store.db.selectFrom('refresh_tokens').select('token_hash').where('family_id', '=', sid).where('spent_at', 'is', null).execute()).length;
const successorRows = (token: string) => t.store.db.selectFrom('refresh_tokens').selectAll().where('parent_hash', '=', RefreshTokenMinter.hash(token)).execute();
const deniedSids = async () => (await t.store.db.selectFrom('deny_list').select('value').where('type', '=', 'sid').execute()).map((r) => r.value);
const auditTypes = async () => (await t.store.db.selectFrom('audit_events').select('type').where('type', 'like', 'refresh.%').orderBy('id').execute()).map((r) => r.type);

/** Signs in, then spends the first refresh token: the state every retry starts from. */
async function spendOnce(client: Client) {
  const first = await signIn(client);
  clock.advance(10);
  const second = await refresh(client, first.refresh_token);
  expect(second.status).toBe(200);
  return { first, second: second.body, sid: sidOf(first) };
}

/** 20 requests with one refresh token at once, over real sockets. */
async function race(client: Client, token: string) {
  const server = await listen(t.app);
  try {
    const attempt = () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { Authorization: basic(client), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as TokenBody }));
    return await Promise.all(Array.from({ length: 20 }, attempt));
  } finally {
    await server.close();
  }
}

describe('grace 0 (the default): strict rotation, as RFC 9700 §4.14.2 describes', () => {
  it('is the default', async () => {
    await setup(0);
    expect(t.config.refreshTokens.retryGraceSeconds).toBe(0);
    expect(defaults.refreshTokens.retryGraceSeconds).toBe(0);
  });

  it('revokes the whole family and denies its sid when a spent token is presented after the spend', async () => {
    const web = await setup(0);
    const { first, second, sid } = await spendOnce(web);
    clock.advance(30);
    const replay = await refresh(web, first.refresh_token);
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await family(sid)).revoked_at).toBe(clock.now());
    expect(await deniedSids()).toEqual([sid]);
    expect(t.app.services.denyList.isDenied(decodeJwt(second.access_token).payload as { sid: string })).toBe(true);
    expect((await refresh(web, second.refresh_token)).body.error).toBe('invalid_grant');
    expect(await live(sid)).toBe(1); // the successor row is still unspent, but its family is dead
    expect(await auditTypes()).toEqual(['refresh.reuse_detected']);
  });

  it('never hands out the successor again, however soon the spent token comes back', async () => {
    const web = await setup(0);
    const { first, second, sid } = await spendOnce(web);
    const again = await refresh(web, first.refresh_token); // same clock millisecond: a lost race at best
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(again.body.refresh_token).toBeUndefined();
    expect((await family(sid)).revoked_at).toBeNull();
    expect((await refresh(web, second.refresh_token)).status).toBe(200);
  });

  for (const ms of [1, 10, 500, 1900]) {
    it(`revokes the family when the spent token is replayed ${ms} ms after the successor was received (no blind window)`, async () => {
      const web = await setup(0);
      const { first, second, sid } = await spendOnce(web);
      clock.ms += ms;
      expect((await refresh(web, first.refresh_token)).body.error).toBe('invalid_grant');
      expect((await family(sid)).revoked_at).toBe(clock.now());
      expect(await deniedSids()).toEqual([sid]);
      expect((await refresh(web, second.refresh_token)).body.error).toBe('invalid_grant');
      const intro = await t.request.post('/introspect').auth('web', web.client_secret ?? '').type('form').send({ token: second.access_token });
      expect(intro.body).toEqual({ active: false });
      const feed = await t.request.get('/deny-list').auth('web', web.client_secret ?? '');
      expect(feed.body.entries).toContainEqual(expect.objectContaining({ type: 'sid', value: sid }));
    });
  }

  it('kills the thief\'s successor when the honest client presents the old token 50 ms after the thief refreshed', async () => {
    const web = await setup(0);
    const victim = await signIn(web);
    clock.advance(250); // the thief reads `exp` and refreshes just before the client would
    const thief = await refresh(web, victim.refresh_token);
    expect(thief.status).toBe(200);
    clock.ms += 50;
    expect((await refresh(web, victim.refresh_token)).body.error).toBe('invalid_grant');
    expect((await refresh(web, thief.body.refresh_token)).body.error).toBe('invalid_grant');
    expect(t.app.services.denyList.isDenied(decodeJwt(thief.body.access_token).payload as { sid: string })).toBe(true);
    expect(await auditTypes()).toEqual(['refresh.reuse_detected']);
  });

  it('gives a request that was in flight when the token was spent invalid_grant and leaves the family intact', async () => {
    const web = await setup(0);
    const first = await signIn(web);
    // the loser arrives first, but reaches the store only after the winner's spend has committed
    const arrived = { receivedAt: clock.now(), arrival: t.app.services.spends.arrival() };
    clock.advance(10);
    const winner = await refresh(web, first.refresh_token);
    expect(winner.status).toBe(200);
    clock.advance(30);
    const client = (await t.app.services.clientAuth.byId('web'))!;
    const params = new Map([['grant_type', 'refresh_token'], ['refresh_token', first.refresh_token]]);
    await expect(t.app.tokenEndpoint.handle({ params, client, ip: '127.0.0.1', ...arrived })).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await family(sidOf(first))).revoked_at).toBeNull();
    expect(await deniedSids()).toEqual([]);
    expect(await auditTypes()).toEqual([]);
    expect((await refresh(web, winner.body.refresh_token)).status).toBe(200);
  });

  it(`judges a spend committed by another process by its stored time, with ${CROSS_PROCESS_TOLERANCE_MS} ms for its commit`, async () => {
    // two apps on one store: B never saw A's spend, as another worker or instance would not
    const shared = await createSharedTestApps(2, { clock: (clock = new FakeClock()) });
    try {
      const [a, b] = shared.apps as [TestApp, TestApp];
      t = a;
      await a.addUser('alice', undefined, ['RETRIEVE_TODOS']);
      const web = await a.addClient('web', { grants: ['password', 'refresh_token'], scope: SCOPE, audience: 'todo-api' });
      const { first, sid } = await spendOnce(web);
      const spentAt = clock.now();
      const client = (await b.app.services.clientAuth.byId('web'))!;
      const params = new Map([['grant_type', 'refresh_token'], ['refresh_token', first.refresh_token]]);
      const handle = (receivedAt: number) => b.app.tokenEndpoint.handle({ params, client, ip: '127.0.0.1', receivedAt, arrival: b.app.services.spends.arrival() });
      await expect(handle(spentAt + CROSS_PROCESS_TOLERANCE_MS)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await family(sid)).revoked_at).toBeNull();
      await expect(handle(spentAt + CROSS_PROCESS_TOLERANCE_MS + 1)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await family(sid)).revoked_at).not.toBeNull();
    } finally {
      open = undefined;
      await shared.close();
    }
  });

  it('lets exactly one of 20 concurrent refreshes win, 20 trials in a row; the other 19 get invalid_grant and the family stays intact', async () => {
    const web = await setup(0);
    for (let trial = 0; trial < 20; trial++) await oneRace(web);
  });

  async function oneRace(web: Client) {
    await t.store.db.deleteFrom('audit_events').execute();
    const first = await signIn(web);
    const sid = sidOf(first);
    clock.advance(10);
    const results = await race(web, first.refresh_token);
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await family(sid)).revoked_at).toBeNull();
    expect(await deniedSids()).toEqual([]);
    expect(await live(sid)).toBe(1);
    expect(await successorRows(first.refresh_token)).toHaveLength(1);
    expect(await auditTypes()).toEqual([]);
    clock.advance(10);
    expect((await refresh(web, String(winners[0]?.body.refresh_token))).status).toBe(200);
  }
});

describe('grace > 0: a retry inside the window', () => {
  it('returns the same successor and a fresh access token with the same sid and scope; the family keeps one live token', async () => {
    const web = await setup(10);
    const { first, second, sid } = await spendOnce(web);
    clock.advance(5);
    const retry = await refresh(web, first.refresh_token);
    expect(retry.status).toBe(200);
    expect(retry.body.refresh_token).toBe(second.refresh_token);
    expect(retry.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: SCOPE });
    const before = decodeJwt(second.access_token).payload;
    const after = decodeJwt(retry.body.access_token).payload;
    expect(after).toMatchObject({ sid, scope: SCOPE, sub: before.sub, aud: 'todo-api', client_id: 'web' });
    expect(after.jti).not.toBe(before.jti);
    expect(after.iat).toBe(Number(before.iat) + 5);
    expect(await live(sid)).toBe(1);
    expect(await successorRows(first.refresh_token)).toHaveLength(1);
    expect((await family(sid)).revoked_at).toBeNull();
    // the retried successor is the family's one live token, and rotates as usual
    clock.advance(5);
    const next = await refresh(web, retry.body.refresh_token);
    expect(next.status).toBe(200);
    expect(await live(sid)).toBe(1);
  });

  it('is a retry up to and including the last millisecond of the window', async () => {
    const web = await setup(10);
    const { first, second } = await spendOnce(web);
    clock.advance(10);
    expect((await refresh(web, first.refresh_token)).body.refresh_token).toBe(second.refresh_token);
  });

  it('keeps the deny window covering the retried access token', async () => {
    const web = await setup(10);
    const { first, sid } = await spendOnce(web);
    clock.advance(8);
    const retry = await refresh(web, first.refresh_token);
    expect((await family(sid)).access_expires_at).toBeGreaterThanOrEqual(Number(decodeJwt(retry.body.access_token).payload.exp) * 1000);
  });

  it('honours a narrower scope on the retry, never a wider one', async () => {
    const web = await setup(10);
    const { first } = await spendOnce(web);
    clock.advance(1);
    const narrow = await refresh(web, first.refresh_token, { scope: 'todos:read' });
    expect(narrow.status).toBe(200);
    expect(decodeJwt(narrow.body.access_token).payload.scope).toBe('todos:read');
    const wide = await refresh(web, first.refresh_token, { scope: 'todos:read admin' });
    expect(wide).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
  });

  it('refuses a retry once the user is disabled, without revoking', async () => {
    const web = await setup(10);
    const { first, sid } = await spendOnce(web);
    await t.app.services.users.setEnabled('alice', false);
    clock.advance(2);
    expect((await refresh(web, first.refresh_token)).body.error).toBe('invalid_grant');
    expect(await auditTypes()).toEqual([]);
    expect((await family(sid)).revoked_reason).not.toBe('refresh token reuse');
  });

  it('refuses a retry of a family that was logged out', async () => {
    const web = await setup(10);
    const { first } = await spendOnce(web);
    await t.app.services.users.logout('alice');
    clock.advance(2);
    const res = await refresh(web, first.refresh_token);
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(res.body.refresh_token).toBeUndefined();
  });

  it('refuses a retry whose successor has outlived the family (absolute lifetime) without calling it a replay', async () => {
    const web = await setup(10, undefined, { idleTtlSeconds: 20, absoluteTtlSeconds: 20 });
    const first = await signIn(web);
    clock.advance(15);
    const second = await refresh(web, first.refresh_token);
    expect(second.status).toBe(200);
    clock.advance(6); // 6 s after the spend, but 1 s past the family's end
    expect((await refresh(web, first.refresh_token)).body.error).toBe('invalid_grant');
    expect((await family(sidOf(first))).revoked_at).toBeNull();
    expect(await auditTypes()).toEqual([]);
  });
});

describe('grace > 0: what is never a retry', () => {
  it('revokes the family and denies its sid when the spent token comes back after the window', async () => {
    const web = await setup(10);
    const { first, second, sid } = await spendOnce(web);
    clock.ms += 10_000 + 1;
    const late = await refresh(web, first.refresh_token);
    expect(late).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(late.body.refresh_token).toBeUndefined();
    expect((await family(sid)).revoked_at).toBe(clock.now());
    expect(await deniedSids()).toEqual([sid]);
    expect(t.app.services.denyList.isDenied(decodeJwt(second.access_token).payload as { sid: string })).toBe(true);
    expect((await refresh(web, second.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('revokes the family when the successor was already used (the client moved on)', async () => {
    const web = await setup(10);
    const { first, second, sid } = await spendOnce(web);
    clock.advance(3);
    const third = await refresh(web, second.refresh_token);
    expect(third.status).toBe(200);
    clock.advance(3); // still inside the first token's window
    const replay = await refresh(web, first.refresh_token);
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(replay.body.refresh_token).toBeUndefined();
    expect((await family(sid)).revoked_at).toBe(clock.now());
    expect(await deniedSids()).toEqual([sid]);
    expect((await refresh(web, third.body.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('refuses the spent token from another client, even inside the window, and revokes nothing', async () => {
    const web = await setup(10);
    const other = await t.addClient('other', { grants: ['password', 'refresh_token'], scope: SCOPE, audience: 'todo-api', refreshGraceSeconds: 10 });
    const { first, second, sid } = await spendOnce(web);
    clock.advance(2);
    const stolen = await refresh(other, first.refresh_token);
    expect(stolen).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(stolen.body.refresh_token).toBeUndefined();
    expect((await family(sid)).revoked_at).toBeNull();
    expect(await deniedSids()).toEqual([]);
    expect(await auditTypes()).toEqual([]);
    // the owner's retry still works
    expect((await refresh(web, first.refresh_token)).body.refresh_token).toBe(second.refresh_token);
  });
});

describe('per-client grace (clients add|update --refresh-grace)', () => {
  it('a client with grace 0 is strict under a global grace of 10', async () => {
    const web = await setup(10, 0);
    const { first, sid } = await spendOnce(web);
    clock.advance(5);
    expect((await refresh(web, first.refresh_token)).body.error).toBe('invalid_grant');
    expect((await family(sid)).revoked_at).toBe(clock.now());
  });

  it('a client with grace 10 retries under a global grace of 0', async () => {
    const web = await setup(0, 10);
    const { first, second, sid } = await spendOnce(web);
    clock.advance(5);
    expect((await refresh(web, first.refresh_token)).body.refresh_token).toBe(second.refresh_token);
    expect((await family(sid)).revoked_at).toBeNull();
  });

  it('takes effect for tokens already issued when the client is updated', async () => {
    const web = await setup(0);
    const { first, second } = await spendOnce(web);
    await t.app.services.clients.update('web', { refreshGraceSeconds: 10 });
    clock.advance(5);
    expect((await refresh(web, first.refresh_token)).body.refresh_token).toBe(second.refresh_token);
  });

  it('refuses a grace outside 0..60 seconds, in the config and per client', async () => {
    expect(() => testConfig({ refreshTokens: { retryGraceSeconds: 61 } })).toThrow(/refreshTokens\.retryGraceSeconds/);
    expect(() => testConfig({ refreshTokens: { retryGraceSeconds: -1 } })).toThrow(/refreshTokens\.retryGraceSeconds/);
    expect(testConfig({ refreshTokens: { retryGraceSeconds: 60 } }).refreshTokens.retryGraceSeconds).toBe(60);
    await setup(0);
    await expect(t.app.services.clients.update('web', { refreshGraceSeconds: 61 })).rejects.toThrow(/0 to 60/);
    await expect(t.app.services.clients.update('web', { refreshGraceSeconds: -1 })).rejects.toThrow(/0 to 60/);
  });
});

describe('the window and the accounting', () => {
  it('measures the window with the injected clock, not real time', async () => {
    // a clock decades away from real time: any Date.now() in the decision would make this fail
    const web = await setup(10, undefined, {}, Date.UTC(2001, 0, 1));
    const { first, second, sid } = await spendOnce(web);
    expect((await t.store.db.selectFrom('refresh_tokens').select('spent_at').where('token_hash', '=', RefreshTokenMinter.hash(first.refresh_token)).executeTakeFirstOrThrow()).spent_at).toBe(clock.now());
    clock.advance(9);
    expect((await refresh(web, first.refresh_token)).body.refresh_token).toBe(second.refresh_token);
    clock.advance(2);
    expect((await refresh(web, first.refresh_token)).body.error).toBe('invalid_grant');
    expect((await family(sid)).revoked_at).toBe(clock.now());
  });

  it('records retries (refresh.retry) and replays (refresh.reuse_detected) as separate audit events and counters', async () => {
    const web = await setup(10);
    const counted = { retry: 0, reuse: 0 };
    const events: ProtocolEvents = { ...t.app.services.events, refreshRetry: () => void counted.retry++, refreshReuse: () => void counted.reuse++ };
    t.app.services.events = events;
    const { first, sid } = await spendOnce(web);
    clock.advance(2);
    await refresh(web, first.refresh_token);
    clock.advance(2);
    await refresh(web, first.refresh_token);
    expect(counted).toEqual({ retry: 2, reuse: 0 });
    clock.advance(30);
    await refresh(web, first.refresh_token);
    expect(counted).toEqual({ retry: 2, reuse: 1 });
    expect(await auditTypes()).toEqual(['refresh.retry', 'refresh.retry', 'refresh.reuse_detected']);
    const { id: sub } = await t.store.db.selectFrom('users').select('id').where('username', '=', 'alice').executeTakeFirstOrThrow();
    const rows = await t.store.db.selectFrom('audit_events').selectAll().where('type', 'like', 'refresh.%').execute();
    for (const r of rows) {
      expect(r).toMatchObject({ client_id: 'web', user_id: sub });
      expect(JSON.parse(String(r.detail))).toEqual({ sid });
      expect(String(r.detail)).not.toContain('tgr_');
    }
  });

  it('lets all 20 concurrent refreshes of one token succeed with the same successor, and stores exactly one successor', async () => {
    const web = await setup(10);
    const first = await signIn(web);
    const sid = sidOf(first);
    clock.advance(10);
    const results = await race(web, first.refresh_token);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const successors = new Set(results.map((r) => r.body.refresh_token));
    expect(successors.size).toBe(1);
    expect(new Set(results.map((r) => decodeJwt(r.body.access_token).payload.jti)).size).toBe(20);
    for (const r of results) expect(decodeJwt(r.body.access_token).payload.sid).toBe(sid);
    const rows = await successorRows(first.refresh_token);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(RefreshTokenMinter.hash(String([...successors][0])));
    expect(await live(sid)).toBe(1);
    expect((await family(sid)).revoked_at).toBeNull();
    expect((await auditTypes()).filter((x) => x === 'refresh.retry')).toHaveLength(19);
  });
});
