// Signing-key rotation without downtime: next (published, not signing) → active → retired
// (published until its tokens expire) → removed (unpublished: its tokens stop verifying). Resource
// servers cache the JWKS, so a key must be published before it signs and stay published until
// every token it signed has expired.
import crypto from 'node:crypto';
import { type JSONWebKeySet, createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { KeyError } from '../../src/keys/signingKey.js';
import { type Store, openStore } from '../../src/store/database.js';
import { createVerifier } from '../../src/verifier/index.js';
import { FakeClock, type TestApp, basic, createTestApp, decodeJwt, keyManager, listen, testConfig } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';

type Creds = { client_id: string; client_secret?: string };
const DAY = 86_400;

async function issue(t: TestApp, client: Creds): Promise<string> {
  const res = await t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'client_credentials' });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

async function introspect(t: TestApp, client: Creds, token: string): Promise<Record<string, unknown>> {
  const res = await t.request.post('/introspect').set('Authorization', basic(client)).type('form').send({ token });
  expect(res.status).toBe(200);
  return res.body as Record<string, unknown>;
}

async function servedJwks(t: TestApp): Promise<{ jwks: JSONWebKeySet; etag: string; body: string }> {
  const res = await t.request.get('/.well-known/jwks.json');
  expect(res.status).toBe(200);
  return { jwks: JSON.parse(res.text) as JSONWebKeySet, etag: res.headers.etag as string, body: res.text };
}

const kids = (jwks: JSONWebKeySet) => jwks.keys.map((k) => k.kid);

/** What a resource server does with a cached JWKS: jose, our issuer, the app's notion of now. */
function verifyWith(t: TestApp, jwks: JSONWebKeySet, token: string) {
  return jwtVerify(token, createLocalJWKSet(jwks), { issuer: t.config.issuer, typ: 'at+jwt', currentDate: new Date(t.clock.now()), clockTolerance: 5 });
}

async function states(t: TestApp): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const row of await t.app.services.keys.repo.all()) (out[row.state] ??= []).push(row.kid);
  return out;
}

describe('signing keys under a running app', () => {
  let t: TestApp;
  let api: Creds;
  beforeEach(async () => {
    t = await createTestApp();
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  });
  afterEach(() => t.close());

  it('starts a fresh install with exactly one active key and one pre-published next key', async () => {
    const s = await states(t);
    expect(s.active).toHaveLength(1);
    expect(s.next).toHaveLength(1);
    expect(s.retired).toBeUndefined();
    const { jwks } = await servedJwks(t);
    expect(kids(jwks).sort()).toEqual([s.active?.[0], s.next?.[0]].sort());
    expect(decodeJwt(await issue(t, api)).header.kid).toBe(s.active?.[0]);
  });

  it('keeps earlier tokens valid across a rotation and signs new ones with the key published before it', async () => {
    const before = await states(t);
    const [oldKid, nextKid] = [before.active?.[0], before.next?.[0]];
    const oldToken = await issue(t, api);
    const cached = await servedJwks(t); // what a resource server cached before the rotation

    const r = await t.app.services.keys.rotate('ES256');
    expect(r).toEqual({ retired: oldKid, activated: nextKid, next: expect.any(String) });
    await t.app.tick();

    const after = await states(t);
    expect(after).toEqual({ retired: [oldKid], active: [nextKid], next: [r?.next] });
    const retired = await t.app.services.keys.repo.find(oldKid!);
    expect(retired?.retired_at).toBe(t.clock.now());
    expect((await t.app.services.keys.repo.find(nextKid!))?.activated_at).toBe(t.clock.now());

    const served = await servedJwks(t);
    expect(kids(served.jwks).sort()).toEqual([oldKid, nextKid, r?.next].sort());
    // the old token: still verifies against the served JWKS, and introspects active
    await expect(verifyWith(t, served.jwks, oldToken)).resolves.toMatchObject({ protectedHeader: { kid: oldKid } });
    expect(await introspect(t, api, oldToken)).toMatchObject({ active: true, client_id: 'todo-api' });
    // a new token: the promoted key, which the cache fetched before the rotation already holds
    const newToken = await issue(t, api);
    expect(decodeJwt(newToken).header.kid).toBe(nextKid);
    await expect(verifyWith(t, cached.jwks, newToken)).resolves.toBeDefined();
    await expect(verifyWith(t, served.jwks, newToken)).resolves.toBeDefined();
    expect(await introspect(t, api, newToken)).toMatchObject({ active: true });
    // the new next key is published now and signs nothing until the following rotation
    expect(kids(served.jwks)).toContain(r?.next);
    expect(decodeJwt(await issue(t, api)).header.kid).not.toBe(r?.next);
  });

  it('changes the JWKS body and its ETag when a rotation publishes a new key', async () => {
    const before = await servedJwks(t);
    await t.app.services.keys.rotate('ES256');
    await t.app.tick();
    const after = await servedJwks(t);
    expect(after.body).not.toBe(before.body);
    expect(after.etag).toMatch(/^"[^"]+"$/);
    expect(after.etag).not.toBe(before.etag);
    // a cache revalidating with the old ETag gets the new set, with the current one a 304
    const stale = await t.request.get('/.well-known/jwks.json').set('If-None-Match', before.etag);
    expect(stale.status).toBe(200);
    expect(stale.headers.etag).toBe(after.etag);
    const fresh = await t.request.get('/.well-known/jwks.json').set('If-None-Match', after.etag);
    expect(fresh.status).toBe(304);
  });

  it('serves the JWKS cacheable for no longer than keys.jwksMaxAgeSeconds, with an ETag', async () => {
    const res = await t.request.get('/.well-known/jwks.json');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.headers.etag).toMatch(/^"[^"]+"$/);
    expect(res.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
  });

  it('revokes every token a key signed when the key is removed, and refuses to do so silently', async () => {
    const oldToken = await issue(t, api);
    const { retired } = (await t.app.services.keys.rotate('ES256'))!;
    await t.app.tick();
    const newToken = await issue(t, api);

    // the retired key may still have live tokens: removing it needs force
    await expect(t.app.services.keys.remove(retired)).rejects.toThrow(/may still have live tokens.*--force/);
    expect(await introspect(t, api, oldToken)).toMatchObject({ active: true });
    // the active key can't be removed at all, force or not
    const active = t.app.services.keyring.signingKey().kid;
    await expect(t.app.services.keys.remove(active, { force: true })).rejects.toThrow(KeyError);

    await t.app.services.keys.remove(retired, { force: true });
    await t.app.tick();
    expect((await t.app.services.keys.repo.find(retired))?.state).toBe('removed');
    expect(await introspect(t, api, oldToken)).toEqual({ active: false });
    const served = await servedJwks(t);
    expect(kids(served.jwks)).not.toContain(retired);
    await expect(verifyWith(t, served.jwks, oldToken)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    // tokens of the other keys are untouched
    expect(await introspect(t, api, newToken)).toMatchObject({ active: true });
    await expect(t.app.services.keys.remove(retired, { force: true })).rejects.toThrow(/already removed/);
    await expect(t.app.services.keys.remove('no-such-kid', { force: true })).rejects.toThrow(/no key no-such-kid/);
  });

  it('removes a next key without --force: it never signed a token', async () => {
    const [next] = await t.app.services.keys.repo.byState('next');
    await t.app.services.keys.remove(next!.kid);
    await t.app.tick();
    expect(kids((await servedJwks(t)).jwks)).not.toContain(next!.kid);
  });

  it('refuses to rotate when there is no next key, rather than sign with a key no cache has seen', async () => {
    const [next] = await t.app.services.keys.repo.byState('next');
    await t.app.services.keys.retire(next!.kid);
    const active = t.app.services.keyring.signingKey().kid;
    await expect(t.app.services.keys.rotate('ES256')).rejects.toThrow(/no next key.*tollgate keys generate/);
    // the failed rotation changed nothing
    expect((await t.app.services.keys.repo.find(active))?.state).toBe('active');
    const generated = await t.app.services.keys.generate('ES256');
    await expect(t.app.services.keys.rotate('ES256')).resolves.toMatchObject({ retired: active, activated: generated.kid });
  });

  it('retires a next key but refuses to retire the active one (rotate instead)', async () => {
    const active = t.app.services.keyring.signingKey().kid;
    await expect(t.app.services.keys.retire(active)).rejects.toThrow(/active key.*tollgate keys rotate/);
    const [next] = await t.app.services.keys.repo.byState('next');
    await t.app.services.keys.retire(next!.kid);
    expect((await t.app.services.keys.repo.find(next!.kid))?.state).toBe('retired');
    await expect(t.app.services.keys.retire(next!.kid)).rejects.toThrow(/is retired, not next/);
  });
});

describe('the resource-server verifier (tollgate/verifier) across a rotation and a removal', () => {
  let t: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let api: Creds;
  beforeEach(async () => {
    // the verifier reads the real time: tokens are issued "now"
    t = await createTestApp({ clock: new FakeClock(Date.now()) });
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    server = await listen(t.app);
  });
  afterEach(async () => {
    await server.close();
    await t.close();
  });

  const verifier = () => createVerifier({ issuer: t.config.issuer, audience: 'todo-api', jwksUri: `${server.url}/.well-known/jwks.json` });

  it('accepts tokens of a retired key, and rejects them once the key is removed', async () => {
    const oldToken = await issue(t, api);
    const { retired } = (await t.app.services.keys.rotate('ES256'))!;
    await t.app.tick();
    const newToken = await issue(t, api);

    const before = verifier();
    try {
      await before.ready();
      await expect(before.verify(oldToken)).resolves.toMatchObject({ client_id: 'todo-api' });
      await expect(before.verify(newToken)).resolves.toMatchObject({ client_id: 'todo-api' });
    } finally {
      before.close();
    }

    await t.app.services.keys.remove(retired, { force: true });
    await t.app.tick();
    // a verifier that loads the JWKS now no longer finds the key: every token it signed is refused
    const after = verifier();
    try {
      await after.ready();
      await expect(after.verify(oldToken)).rejects.toMatchObject({ code: 'ERR_TOKEN_SIGNATURE' });
      await expect(after.verify(newToken)).resolves.toMatchObject({ client_id: 'todo-api' });
    } finally {
      after.close();
    }
  });
});

describe('retired keys leave the JWKS on their own', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('drops a retired key after retired_at + the longest access-token lifetime + clock tolerance', async () => {
    t = await createTestApp();
    const clock = t.clock as FakeClock;
    // one client's tokens live 900 s, longer than the default 300 s: that is the window
    const slow = await t.addClient('batch', { grants: ['client_credentials'], accessTokenTtl: 900 });
    const longToken = await issue(t, slow);
    const { retired } = (await t.app.services.keys.rotate('ES256'))!;
    await t.app.tick();

    clock.advance(900 + 4); // past exp, within the 5 s tolerance: a resource server still accepts it
    await t.app.tick();
    expect((await t.app.services.keys.repo.find(retired))?.state).toBe('retired');
    await expect(verifyWith(t, (await servedJwks(t)).jwks, longToken)).resolves.toBeDefined();

    clock.advance(1); // exactly retired_at + 900 + 5: still published
    await t.app.tick();
    expect(kids((await servedJwks(t)).jwks)).toContain(retired);

    clock.advance(1);
    await t.app.tick();
    expect((await t.app.services.keys.repo.find(retired))?.state).toBe('removed');
    const served = await servedJwks(t);
    expect(kids(served.jwks)).not.toContain(retired);
    expect(kids(served.jwks)).toHaveLength(2); // the active and the next key
    const removed = await t.store.db.selectFrom('audit_events').select('detail').where('type', '=', 'key.removed').execute();
    expect(removed.map((r) => JSON.parse(r.detail ?? '{}'))).toEqual([{ kid: retired, reason: 'expired' }]);
  });
});

describe('scheduled rotation (keys.rotateEvery)', () => {
  let t: TestApp;
  let clock: FakeClock;
  afterEach(() => t.close());

  const activeKid = async () => (await t.app.services.keys.repo.byState('active'))[0]?.kid;

  it('is off by default: no rotation however much time passes', async () => {
    t = await createTestApp();
    clock = t.clock as FakeClock;
    expect(t.config.keys.rotateEvery).toBeNull();
    const before = await activeKid();
    clock.advance(365 * DAY);
    await t.app.tick();
    expect(await activeKid()).toBe(before);
  });

  it('rotates once the active key is older than rotateEvery, driven by the injected clock', async () => {
    t = await createTestApp({ config: { keys: { rotateEvery: '1d' } } });
    clock = t.clock as FakeClock;
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const first = await states(t);

    clock.advance(DAY - 1);
    await t.app.tick();
    expect(await activeKid()).toBe(first.active?.[0]);

    clock.advance(1);
    await t.app.tick();
    const second = await states(t);
    expect(second.active).toEqual(first.next);
    expect(second.retired).toEqual(first.active);
    expect(decodeJwt(await issue(t, api)).header.kid).toBe(first.next?.[0]);
    const rotated = await t.store.db.selectFrom('audit_events').select('detail').where('type', '=', 'key.rotated').execute();
    expect(rotated).toHaveLength(1);
    expect(JSON.parse(rotated[0]!.detail!)).toMatchObject({ retired: first.active?.[0], activated: first.next?.[0], scheduled: true });

    // the next interval counts from the activation, not from the install
    clock.advance(DAY - 1);
    await t.app.tick();
    expect(await activeKid()).toBe(first.next?.[0]);
    clock.advance(1);
    await t.app.tick();
    expect(await activeKid()).toBe(second.next?.[0]);
  });

  it('waits until a next key has been published for jwksMaxAgeSeconds before it signs', async () => {
    t = await createTestApp({ config: { keys: { rotateEvery: '1d' } } });
    clock = t.clock as FakeClock;
    const initial = await states(t);
    await t.app.services.keys.retire(initial.next![0]!); // no next key left

    clock.advance(DAY);
    await t.app.tick();
    // due, but nothing was published to rotate to: publish one, keep signing with the old key
    const published = await states(t);
    expect(published.active).toEqual(initial.active);
    expect(published.next).toHaveLength(1);
    const fresh = published.next![0]!;
    expect(kids((await servedJwks(t)).jwks)).toContain(fresh);

    clock.advance(300); // max-age 300 s + the servers' reload interval (1 s) not yet over
    await t.app.tick();
    expect(await activeKid()).toBe(initial.active?.[0]);

    clock.advance(1);
    await t.app.tick();
    expect(await activeKid()).toBe(fresh);
  });

  it('rejects a JWKS max-age that is not shorter than the rotation interval', () => {
    expect(() => testConfig({ keys: { rotateEvery: '5m', jwksMaxAgeSeconds: 300 } })).toThrow(ConfigError);
    expect(() => testConfig({ keys: { rotateEvery: '5m', jwksMaxAgeSeconds: 300 } })).toThrow(/keys\.jwksMaxAgeSeconds must be shorter than keys\.rotateEvery/);
    expect(testConfig({ keys: { rotateEvery: '5m', jwksMaxAgeSeconds: 299 } }).keys.rotateEvery).toBe('5m');
    expect(testConfig({ keys: { rotateEvery: null, jwksMaxAgeSeconds: 86_400 } }).keys.jwksMaxAgeSeconds).toBe(86_400);
  });

  it('rejects rotation intervals that are not positive durations', () => {
    for (const bad of ['0d', '30', 'monthly', '-1d', '']) expect(() => testConfig({ keys: { rotateEvery: bad } }), bad).toThrow(/config: invalid keys\.rotateEvery/);
  });
});

describe('several processes on one store', () => {
  let db: TestDatabase;
  const stores: Store[] = [];
  const apps: TestApp[] = [];
  const kek = crypto.randomBytes(32);
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
    for (const s of stores.splice(0)) await s.close();
    await db.drop();
  });

  // each store is its own connection, like another process; a short busy timeout because both
  // "processes" share this one thread
  const open = () => {
    const s = db.dialect === 'sqlite' ? openStore(db.url, { busyTimeoutMs: 50 }) : db.open();
    stores.push(s);
    return s;
  };
  const start = async (clock: FakeClock, config: Record<string, unknown> = {}) => {
    const a = await createTestApp({ store: open(), clock, kek, config });
    apps.push(a);
    return a;
  };

  it('rotates exactly once when two instances run the schedule at the same moment', async () => {
    const clock = new FakeClock();
    const a = await start(clock, { keys: { rotateEvery: '1d' } });
    const b = await start(clock, { keys: { rotateEvery: '1d' } });
    const initial = await states(a);
    expect(initial.active).toHaveLength(1); // the second instance found the first one's keys

    clock.advance(DAY);
    await Promise.all([a.app.tick(), b.app.tick()]);
    await Promise.all([a.app.tick(), b.app.tick()]);

    const after = await states(a);
    expect(after.retired).toEqual(initial.active);
    expect(after.active).toEqual(initial.next);
    expect(after.next).toHaveLength(1);
    const rotated = await a.store.db.selectFrom('audit_events').select('id').where('type', '=', 'key.rotated').execute();
    expect(rotated).toHaveLength(1);
    expect(a.app.services.keyring.signingKey().kid).toBe(initial.next?.[0]);
    expect(b.app.services.keyring.signingKey().kid).toBe(initial.next?.[0]);
  });

  it('lets only one of two racing rotations of the same active key win (compare-and-set)', async () => {
    const clock = new FakeClock();
    const a = await start(clock);
    const active = a.app.services.keyring.signingKey().kid;
    const other = keyManager(open().db, kek, clock);
    expect(await a.app.services.keys.rotate('ES256', { ifActive: active })).toMatchObject({ retired: active });
    expect(await other.rotate('ES256', { ifActive: active })).toBeUndefined();
    expect(await a.app.services.keys.repo.byState('active')).toHaveLength(1);
    expect(await a.app.services.keys.repo.byState('retired')).toHaveLength(1);
  });

  it('picks up a rotation made by another process on refresh(), without a restart', async () => {
    const clock = new FakeClock();
    const a = await start(clock);
    const api = await a.addClient('todo-api', { grants: ['client_credentials'] });
    const before = await servedJwks(a);
    expect(await a.app.services.keyring.refresh()).toBe(false); // nothing changed: no reload

    const cli = keyManager(open().db, kek, clock); // what `tollgate keys rotate` does
    const r = (await cli.rotate('ES256'))!;
    // until the reload the server keeps signing with the key it holds, which is still published
    expect(decodeJwt(await issue(a, api)).header.kid).toBe(r.retired);

    expect(await a.app.services.keyring.refresh()).toBe(true);
    expect(decodeJwt(await issue(a, api)).header.kid).toBe(r.activated);
    const after = await servedJwks(a);
    expect(kids(after.jwks)).toContain(r.next);
    expect(after.etag).not.toBe(before.etag);
  });

  it('reloads keys changed by another process within the reload interval when the jobs run', async () => {
    const clock = new FakeClock();
    const store = open();
    const a = await createTestApp({ store, clock, kek, jobs: true, config: { keys: { reloadIntervalMs: 20 } } });
    apps.push(a);
    const server = await listen(a.app);
    try {
      const r = (await keyManager(open().db, kek, clock).rotate('ES256'))!;
      let jwks: JSONWebKeySet = { keys: [] };
      for (let i = 0; i < 200 && !kids(jwks).includes(r.next); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
      }
      expect(kids(jwks)).toContain(r.next);
      expect(a.app.services.keyring.signingKey().kid).toBe(r.activated);
    } finally {
      await server.close();
    }
  });
});
