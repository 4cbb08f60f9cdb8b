// Issue 14: every way to revoke reaches introspection and the deny-list feed, and lasts until the
// last token it can deny has expired, whatever the configuration has become since (INTERFACE.md,
// "Revocation reach"). The same guarantees across two instances on one store run in
// test/fleet/revocationReach.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { seconds } from '../../src/clock.js';
import type { FeedEntry } from '../../src/denylist/denyList.js';
import { AccessHorizon } from '../../src/tokens/accessHorizon.js';
import { FakeClock, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';

let t: TestApp;
afterEach(() => t?.close());

type Creds = { client_id: string; client_secret?: string };

async function setup(config: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  t = await createTestApp({ clock, config });
  const alice = await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
  // the API: a confidential client that introspects and reads the feed
  const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  return { clock, alice, api };
}

const introspect = async (api: Creds, token: string) => (await t.request.post('/introspect').set('Authorization', basic(api)).type('form').send({ token })).body as { active: boolean };
const feed = async (api: Creds) => (await t.request.get('/deny-list').set('Authorization', basic(api))).body as { entries: FeedEntry[] };
const claims = (token: string) => decodeJwt(token).payload as { exp: number; iat: number; sid?: string; jti: string; client_id: string };

describe('disabling a user outlives a change of lifetimes (issue 14, item 2)', () => {
  it('keeps refusing a 3600 s token after its client was cut to 60 s and the user disabled, 6 minutes on', async () => {
    const { clock, api } = await setup();
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'], accessTokenTtl: 3600 });
    const signIn = await passwordGrant(t, web, 'alice');
    expect(signIn.status).toBe(200);
    const token = signIn.body.access_token as string;
    expect(claims(token).exp - claims(token).iat).toBe(3600);
    await t.app.services.clients.update('web', { accessTokenTtl: 60 });
    await t.app.services.users.setEnabled('alice', false);
    clock.advance(6 * 60);
    await t.app.tick(); // prunes what has expired
    expect(await introspect(api, token)).toEqual({ active: false });
    const sub = (await feed(api)).entries.find((e) => e.type === 'sub');
    // the entry lasts until the token's exp (plus the verifiers' clock tolerance), not 60 s
    expect(sub?.expires_at).toBeGreaterThanOrEqual(claims(token).exp);
    expect(t.app.services.denyList.isDenied(claims(token) as never)).toBe(true);
  });

  it('outlives a removed client too: users logout after `clients remove` of a 3600 s client still denies its tokens', async () => {
    const { clock, api, alice } = await setup();
    const web = await t.addClient('web', { grants: ['password'], accessTokenTtl: 3600 });
    const token = (await passwordGrant(t, web, 'alice')).body.access_token as string;
    await t.app.services.clients.remove('web');
    await t.app.services.users.logout('alice');
    clock.advance(30 * 60);
    await t.app.tick();
    expect(await introspect(api, token)).toEqual({ active: false });
    expect((await feed(api)).entries).toContainEqual(expect.objectContaining({ type: 'sub', value: alice }));
  });

  it('outlives a default lifetime lowered across a restart', async () => {
    const clock = new FakeClock();
    t = await createTestApp({ clock, config: { accessTokens: { ttlSeconds: 3600 } } });
    await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password'] });
    const token = (await passwordGrant(t, web, 'alice')).body.access_token as string;
    clock.advance(10);
    // what the next start, configured with a 60 s default, does first on the same store
    const restarted = new AccessHorizon({ db: t.store.db, clock, defaultTtlSeconds: 60, clockToleranceSeconds: 5 });
    await restarted.noteDefault();
    expect(await restarted.until()).toBeGreaterThanOrEqual(claims(token).exp);
    // and a later start with the same 60 s default remembers the horizon
    await new AccessHorizon({ db: t.store.db, clock, defaultTtlSeconds: 60, clockToleranceSeconds: 5 }).noteDefault();
    expect(await restarted.until()).toBeGreaterThanOrEqual(claims(token).exp);
  });
});

describe('removing a client revokes everything it holds (issue 14, item 3)', () => {
  it('denies its password-grant, refreshed and client_credentials tokens at introspection and on the feed, in one transaction', async () => {
    const { clock, api } = await setup();
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const svc = await t.addClient('svc', { grants: ['client_credentials'] });
    const signedIn = (await passwordGrant(t, web, 'alice')).body as { access_token: string; refresh_token: string };
    clock.advance(5);
    const refreshed = (await refreshGrant(t, web, signedIn.refresh_token)).body as { access_token: string; refresh_token: string };
    const machine = (await t.request.post('/token').set('Authorization', basic(svc)).type('form').send({ grant_type: 'client_credentials' })).body as { access_token: string };
    for (const token of [signedIn.access_token, refreshed.access_token, machine.access_token]) expect((await introspect(api, token)).active).toBe(true);

    const now = seconds(clock.now());
    expect(await t.app.services.clients.remove('web')).toEqual({ families: 1 });
    expect(await t.app.services.clients.remove('svc')).toEqual({ families: 0 });
    for (const token of [signedIn.access_token, refreshed.access_token, machine.access_token]) expect(await introspect(api, token)).toEqual({ active: false });
    const entries = (await feed(api)).entries;
    expect(entries).toContainEqual({ type: 'sid', value: claims(refreshed.access_token).sid, expires_at: expect.any(Number) });
    const web_ = entries.find((e) => e.type === 'client' && e.value === 'web');
    const svc_ = entries.find((e) => e.type === 'client' && e.value === 'svc');
    expect(web_).toMatchObject({ issued_before: now });
    expect(svc_).toMatchObject({ issued_before: now });
    expect(svc_!.expires_at).toBeGreaterThanOrEqual(claims(machine.access_token).exp);
    expect(Object.keys(web_!)).toEqual(['type', 'value', 'issued_before', 'expires_at']);
    // another client's tokens are untouched
    const other = await t.addClient('other', { grants: ['client_credentials'] });
    clock.advance(2);
    const kept = (await t.request.post('/token').set('Authorization', basic(other)).type('form').send({ grant_type: 'client_credentials' })).body as { access_token: string };
    expect((await introspect(api, kept.access_token)).active).toBe(true);
  });

  it('does not deny the tokens of a client re-created later under the same id', async () => {
    const { clock, api } = await setup();
    await t.addClient('svc', { grants: ['client_credentials'] });
    await t.app.services.clients.remove('svc');
    clock.advance(2);
    const again = await t.addClient('svc', { grants: ['client_credentials'] });
    const token = (await t.request.post('/token').set('Authorization', basic(again)).type('form').send({ grant_type: 'client_credentials' })).body as { access_token: string };
    expect((await introspect(api, token.access_token)).active).toBe(true);
  });
});

describe('removing a signing key puts its kid on the feed (issue 14, item 4)', () => {
  it('lists a `kid` entry until every token it signed has expired when a key with live tokens is removed', async () => {
    const { clock, api } = await setup();
    const web = await t.addClient('web', { grants: ['password'] });
    const token = (await passwordGrant(t, web, 'alice')).body.access_token as string;
    const kid = String(decodeJwt(token).header.kid);
    await t.app.services.keys.rotate('ES256');
    await t.app.services.keyring.refresh();
    clock.advance(1);
    await t.app.services.keys.remove(kid, { force: true });
    const entry = (await feed(api)).entries.find((e) => e.type === 'kid');
    expect(entry).toEqual({ type: 'kid', value: kid, expires_at: expect.any(Number) });
    expect(entry!.expires_at).toBeGreaterThanOrEqual(claims(token).exp);
    expect(await introspect(api, token)).toEqual({ active: false });
  });

  it('lists nothing for a key that never signed', async () => {
    const { api } = await setup();
    const [next] = await t.app.services.keys.repo.byState('next');
    await t.app.services.keys.remove(next!.kid);
    expect((await feed(api)).entries).toEqual([]);
  });
});
