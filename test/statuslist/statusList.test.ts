// Issue 18: every access token carries a Token Status List entry, the list is served as a signed
// Status List Token, and every revocation sets exactly the bits of the tokens it revokes.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestApp, FakeClock, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';
import { createTestDatabase } from '../testDatabase.js';
import { statusOf, statusOfToken } from './helpers.js';

type Creds = { client_id: string; client_secret?: string };
const apps: TestApp[] = [];
afterEach(async () => {
  for (const t of apps.splice(0)) await t.close();
});

async function app(options: Parameters<typeof createTestApp>[0] = {}): Promise<TestApp> {
  const t = await createTestApp(options);
  apps.push(t);
  return t;
}

const text = (res: { text?: string; body: unknown }) => (typeof res.body === 'string' ? res.body : (res.text ?? ''));

async function clientCredentials(t: TestApp, client: Creds): Promise<string> {
  const res = await t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'client_credentials' }).expect(200);
  return res.body.access_token as string;
}

/** Alice with two sessions, Bob with one, two service clients with two and one tokens. */
async function world() {
  const t = await app();
  await t.addUser('alice');
  await t.addUser('bob');
  const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
  const svc = await t.addClient('svc', { grants: ['client_credentials'] });
  const svc2 = await t.addClient('svc2', { grants: ['client_credentials'] });
  const alice1 = (await passwordGrant(t, web, 'alice').expect(200)).body as { access_token: string; refresh_token: string };
  const alice2 = (await passwordGrant(t, web, 'alice').expect(200)).body as { access_token: string; refresh_token: string };
  const bob = (await passwordGrant(t, web, 'bob').expect(200)).body as { access_token: string; refresh_token: string };
  const tokens = {
    alice1: alice1.access_token,
    alice2: alice2.access_token,
    bob: bob.access_token,
    svcA: await clientCredentials(t, svc),
    svcB: await clientCredentials(t, svc),
    svc2: await clientCredentials(t, svc2),
  };
  return { t, web, svc, svc2, refresh: { alice1: alice1.refresh_token, alice2: alice2.refresh_token, bob: bob.refresh_token }, tokens };
}

/** Which of the named tokens the served lists call INVALID. */
async function invalid(t: TestApp, tokens: Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  for (const [name, token] of Object.entries(tokens)) if ((await statusOfToken(t, token)) === 1) out.push(name);
  return out.sort();
}

describe('the status claim (draft-ietf-oauth-status-list §6.1)', () => {
  it('is in every access token: password, refresh_token and client_credentials grants', async () => {
    const { t, web, refresh, tokens } = await world();
    for (const token of Object.values(tokens)) {
      const ref = statusOf(token);
      expect(Number.isInteger(ref.idx)).toBe(true);
      expect(ref.uri).toMatch(/^http:\/\/localhost:3000\/statuslists\/[^/]+$/);
    }
    // a refresh issues into the family's own index: revoking the family is one bit
    const rotated = (await refreshGrant(t, web, refresh.alice1).expect(200)).body.access_token as string;
    expect(statusOf(rotated)).toEqual(statusOf(tokens.alice1));
    // every other token has an index of its own
    const refs = Object.values(tokens).map((tok) => JSON.stringify(statusOf(tok)));
    expect(new Set(refs).size).toBe(refs.length);
  });
});

describe('GET /statuslists/{id} (§5.1, §8)', () => {
  it('answers a Status List Token signed with a key of the JWKS, without client authentication', async () => {
    const { t, tokens } = await world();
    const ref = statusOf(tokens.bob);
    const res = await t.request.get(new URL(ref.uri).pathname).buffer(true).parse((r, cb) => {
      let s = '';
      r.on('data', (c: Buffer) => (s += c.toString()));
      r.on('end', () => cb(null, s));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/statuslist+jwt');
    expect(res.headers['cache-control']).toBe('public, max-age=30');
    expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const jwt = text(res);
    const header = decodeProtectedHeader(jwt);
    expect(header.typ).toBe('statuslist+jwt');
    const jwks = (await t.request.get('/.well-known/jwks.json').expect(200)).body as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    const clock = t.clock.now();
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]), { typ: 'statuslist+jwt', subject: ref.uri, issuer: 'http://localhost:3000', currentDate: new Date(clock) });
    expect(payload.ttl).toBe(30);
    expect(payload.iat).toBe(Math.floor(clock / 1000));
    expect(payload.exp).toBeGreaterThanOrEqual((payload.iat as number) + 30);
    expect(payload.status_list).toMatchObject({ bits: 1, lst: expect.stringMatching(/^[A-Za-z0-9_-]+$/) });
    expect(await statusOfToken(t, tokens.bob)).toBe(0);

    // the same bytes until something changes: 304 for the ETag
    await t.request.get(new URL(ref.uri).pathname).set('If-None-Match', res.headers.etag as string).expect(304);
  });

  it('is not rendered per request: the same token until a change or ttl, then a new one', async () => {
    const { t, web, tokens } = await world();
    const path = new URL(statusOf(tokens.bob).uri).pathname;
    const first = (await t.request.get(path).expect(200)).headers.etag;
    expect((await t.request.get(path).expect(200)).headers.etag).toBe(first);
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: tokens.bob }).expect(200);
    const afterRevoke = (await t.request.get(path).expect(200)).headers.etag;
    expect(afterRevoke).not.toBe(first);
    (t.clock as FakeClock).advance(31);
    const decoded = decodeJwt(text(await t.request.get(path).buffer(true).parse((r, cb) => { let s = ''; r.on('data', (c: Buffer) => (s += c.toString())); r.on('end', () => cb(null, s)); })));
    expect(decoded.payload.iat).toBe(Math.floor(t.clock.now() / 1000));
  });

  it('answers 404 with a JSON error body for an unknown list, and lists every list (§9 aggregation)', async () => {
    const t = await app();
    const res = await t.request.get('/statuslists/nope').expect(404);
    expect(res.body).toEqual({ error: 'not_found', error_description: expect.any(String) });
    const aggregation = (await t.request.get('/statuslists').expect(200)).body as { status_lists: string[] };
    expect(aggregation.status_lists).toEqual(['http://localhost:3000/statuslists/1']);
    const metadata = (await t.request.get('/.well-known/oauth-authorization-server').expect(200)).body as Record<string, unknown>;
    expect(metadata.status_list_aggregation_endpoint).toBe('http://localhost:3000/statuslists');
  });
});

describe('every revocation sets exactly the bits of the tokens it revokes', () => {
  it('none before any revocation', async () => {
    const { t, tokens } = await world();
    expect(await invalid(t, tokens)).toEqual([]);
  });

  it('RFC 7009, a client_credentials access token: that token only', async () => {
    const { t, svc, tokens } = await world();
    await t.request.post('/revoke').set('Authorization', basic(svc)).type('form').send({ token: tokens.svcA }).expect(200);
    expect(await invalid(t, tokens)).toEqual(['svcA']);
  });

  it('RFC 7009, an access token of a session: its session’s index, and the session’s next tokens are VALID', async () => {
    const { t, web, refresh, tokens } = await world();
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: tokens.alice1 }).expect(200);
    expect(await invalid(t, tokens)).toEqual(['alice1']);
    const next = (await refreshGrant(t, web, refresh.alice1).expect(200)).body.access_token as string;
    expect(statusOf(next)).not.toEqual(statusOf(tokens.alice1));
    expect(await statusOfToken(t, next)).toBe(0);
  });

  it('RFC 7009, a refresh token: its family’s access tokens', async () => {
    const { t, web, refresh, tokens } = await world();
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: refresh.alice2 }).expect(200);
    expect(await invalid(t, tokens)).toEqual(['alice2']);
  });

  it('reuse detection: the replayed family’s access tokens', async () => {
    const { t, web, refresh, tokens } = await world();
    const rotated = (await refreshGrant(t, web, refresh.bob).expect(200)).body.access_token as string;
    (t.clock as FakeClock).advance(1);
    await refreshGrant(t, web, refresh.bob).expect(400);
    expect(await invalid(t, { ...tokens, rotated })).toEqual(['bob', 'rotated']);
  });

  for (const action of ['disable', 'logout', 'set-password'] as const) {
    it(`users ${action}: every token of the user`, async () => {
      const { t, tokens } = await world();
      const users = t.app.services.users;
      if (action === 'disable') await users.setEnabled('alice', false);
      if (action === 'logout') await users.logout('alice');
      if (action === 'set-password') await users.setPassword('alice', 'another long passphrase 42');
      expect(await invalid(t, tokens)).toEqual(['alice1', 'alice2']);
    });
  }

  it('clients remove: every token of the client', async () => {
    const { t, tokens } = await world();
    await t.app.services.clients.remove('svc');
    expect(await invalid(t, tokens)).toEqual(['svcA', 'svcB']);
    await t.app.services.clients.remove('web');
    expect(await invalid(t, tokens)).toEqual(['alice1', 'alice2', 'bob', 'svcA', 'svcB']);
  });
});

describe('index allocation', () => {
  it('gives 1,000 tokens indices that are not sequential and never collide among live tokens', async () => {
    const t = await app();
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await t.addClient(`svc${i}`, { grants: ['client_credentials'] }));
    await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const refs: string[] = [];
    const indices: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const token = i % 50 === 0 ? ((await passwordGrant(t, web, 'alice').expect(200)).body.access_token as string) : await clientCredentials(t, clients[i % 4] as Creds);
      const ref = statusOf(token);
      refs.push(`${ref.uri}#${ref.idx}`);
      indices.push(ref.idx);
    }
    expect(new Set(refs).size).toBe(1000);
    // in issue order, neighbours are not neighbours in the list (a counter would be +1 each time)
    const steps = indices.slice(1).map((v, i) => v - (indices[i] as number));
    expect(steps.filter((s) => s === 1).length).toBeLessThan(20);
    expect(steps.filter((s) => s > 0).length).toBeLessThan(900);
    // spread over the list, not packed at its start
    expect(Math.max(...indices)).toBeGreaterThan(t.config.statusList.listSize / 2);
  });

  it('reuses an index only after every token that used it has expired, and clears a set bit before that', async () => {
    const clock = new FakeClock();
    // a list of 1024 statuses and a 1-second block lifetime don't exist: a small list makes reuse likely
    const t = await app({ clock, config: { statusList: { listSize: 1024 } } });
    const svc = await t.addClient('svc', { grants: ['client_credentials'], accessTokenTtl: 60 });
    const first = await clientCredentials(t, svc);
    await t.request.post('/revoke').set('Authorization', basic(svc)).type('form').send({ token: first }).expect(200);
    const slots = () => t.store.db.selectFrom('status_slots').selectAll().execute();
    const before = await slots();
    expect(before.some((s) => s.invalid === 1)).toBe(true);
    // not yet expired: nothing is cleared or freed
    clock.advance(60);
    await t.app.tick();
    expect((await slots()).length).toBe(before.length);
    expect(await statusOfToken(t, first)).toBe(1);
    // past the block, the token lifetime and the tolerance: the bit is cleared, the slot quarantined
    clock.advance(70);
    await t.app.tick();
    // (the block's unused slots, never published INVALID, are simply freed)
    const quarantined = await slots();
    expect(quarantined.map((s) => [s.idx, s.invalid])).toEqual([[statusOf(first).idx, 0]]);
    expect(await statusOfToken(t, first)).toBe(0);
    // past the quarantine (2 ttl + 60 s): free again
    clock.advance(2 * 30 + 61);
    await t.app.tick();
    expect(await slots()).toEqual([]);
  });
});

describe('persistence', () => {
  it('a list survives a restart', async () => {
    const database = await createTestDatabase();
    const clock = new FakeClock();
    const kek = (await import('node:crypto')).randomBytes(32);
    try {
      const store1 = database.open();
      const t1 = await createTestApp({ store: store1, kek, clock, config: { database: { url: database.url } } });
      const svc = await t1.addClient('svc', { grants: ['client_credentials'] });
      const revoked = await clientCredentials(t1, svc);
      const live = await clientCredentials(t1, svc);
      await t1.request.post('/revoke').set('Authorization', basic(svc)).type('form').send({ token: revoked }).expect(200);
      await t1.close();
      await store1.close();

      const store2 = database.open();
      const t2 = await createTestApp({ store: store2, kek, clock, config: { database: { url: database.url } } });
      expect(await statusOfToken(t2, revoked)).toBe(1);
      expect(await statusOfToken(t2, live)).toBe(0);
      // new tokens never take a live token's index
      const again = await clientCredentials(t2, svc);
      expect([statusOf(revoked), statusOf(live)]).not.toContainEqual(statusOf(again));
      await t2.close();
      await store2.close();
    } finally {
      await database.drop();
    }
  });
});
