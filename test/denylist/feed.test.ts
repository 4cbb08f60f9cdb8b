// GET /deny-list: the feed resource servers poll. Confidential clients only; the entry shapes of
// INTERFACE.md; an opaque cursor for increments; ETag revalidation; expired entries leave it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seconds } from '../../src/clock.js';
import { type FakeClock, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };
type Entry = { type: string; value: string; issued_before?: number; expires_at: number };
type Page = { cursor: string; entries: Entry[] };

describe('GET /deny-list', () => {
  let t: TestApp;
  let clock: FakeClock;
  let web: Creds;
  let api: Creds;
  let alice: string;

  beforeEach(async () => {
    t = await createTestApp();
    clock = t.clock as FakeClock;
    alice = await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api' });
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  });
  afterEach(() => t.close());

  const get = (query = '', client: Creds = api) => t.request.get(`/deny-list${query}`).set('Authorization', basic(client));
  const page = async (query = ''): Promise<Page> => {
    const res = await get(query);
    expect(res.status).toBe(200);
    return res.body as Page;
  };
  const signIn = async () => (await passwordGrant(t, web, 'alice')).body as { access_token: string; refresh_token: string };
  const revoke = (token: string) => t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token });
  const claims = (token: string) => decodeJwt(token).payload as { jti: string; sid: string; exp: number };

  describe('client authentication', () => {
    it('answers 401 invalid_client without credentials', async () => {
      const res = await t.request.get('/deny-list');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('answers 401 invalid_client for a wrong secret, with a Basic challenge', async () => {
      const res = await get('', { client_id: 'todo-api', client_secret: 'tgs_nope' });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    });

    it('refuses a public client', async () => {
      await t.addClient('spa', { public: true, grants: ['password'] });
      const res = await t.request.get('/deny-list?client_id=spa');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('asks for credentials before it answers a conditional request', async () => {
      const { headers } = await get();
      const res = await t.request.get('/deny-list').set('If-None-Match', headers.etag as string);
      expect(res.status).toBe(401);
    });
  });

  describe('entries', () => {
    it('starts empty, with a cursor', async () => {
      const body = await page();
      expect(body).toEqual({ cursor: expect.any(String), entries: [] });
    });

    it('lists jti, sid and sub entries in the shapes of INTERFACE.md, oldest first', async () => {
      const one = await signIn();
      const two = await signIn();
      await revoke(one.access_token);
      await revoke(two.refresh_token);
      clock.advance(2);
      await t.app.services.users.logout('alice');
      const now = seconds(clock.now());
      const tolerance = t.config.accessTokens.clockToleranceSeconds;

      const body = await page();
      expect(Object.keys(body).sort()).toEqual(['cursor', 'entries']);
      expect(body.entries).toEqual([
        { type: 'jti', value: claims(one.access_token).jti, expires_at: claims(one.access_token).exp + tolerance },
        // a signed-in family's horizon is one TTL past its access token (accessHorizon)
        { type: 'sid', value: claims(two.access_token).sid, expires_at: claims(two.access_token).exp + t.config.accessTokens.ttlSeconds + tolerance },
        // logout: the user's other live family by sid, and every token issued to the user by sub
        { type: 'sid', value: claims(one.access_token).sid, expires_at: claims(one.access_token).exp + t.config.accessTokens.ttlSeconds + tolerance },
        { type: 'sub', value: alice, issued_before: now, expires_at: now + (await t.app.services.horizon.windowSeconds()) },
      ]);
      for (const e of body.entries) expect(Object.keys(e)).toEqual(e.type === 'sub' ? ['type', 'value', 'issued_before', 'expires_at'] : ['type', 'value', 'expires_at']);
    });

    it('shows refresh-token reuse detection: the family\'s sid is listed', async () => {
      const first = await signIn();
      const rotated = await refreshGrant(t, web, first.refresh_token);
      expect(rotated.status).toBe(200);
      // a minute later: a request close to the spend counts as a lost race, not a replay
      clock.advance(60);
      const replay = await refreshGrant(t, web, first.refresh_token);
      expect(replay.body.error).toBe('invalid_grant');
      const { sid, exp } = claims(rotated.body.access_token);
      // rotated at sign-in time: the horizon the password grant set, one TTL past this token (accessHorizon)
      const { ttlSeconds, clockToleranceSeconds } = t.config.accessTokens;
      expect((await page()).entries).toEqual([{ type: 'sid', value: sid, expires_at: exp + ttlSeconds + clockToleranceSeconds }]);
    });
  });

  describe('cursors', () => {
    it('returns only newer entries after a cursor', async () => {
      const one = await signIn();
      await revoke(one.access_token);
      const first = await page();
      expect(first.entries).toHaveLength(1);

      const nothingNew = await page(`?after=${first.cursor}`);
      expect(nothingNew).toEqual({ cursor: first.cursor, entries: [] });

      const two = await signIn();
      await revoke(two.access_token);
      const next = await page(`?after=${first.cursor}`);
      expect(next.entries).toEqual([expect.objectContaining({ type: 'jti', value: claims(two.access_token).jti })]);
      expect(next.cursor).not.toBe(first.cursor);
      expect(await page(`?after=${next.cursor}`)).toEqual({ cursor: next.cursor, entries: [] });
      // from the start again: everything
      expect((await page()).entries).toHaveLength(2);
    });

    it('gives a reader that started on an empty feed every later entry', async () => {
      const empty = await page();
      const one = await signIn();
      await revoke(one.access_token);
      expect((await page(`?after=${empty.cursor}`)).entries).toHaveLength(1);
    });

    it('answers 400 invalid_request for a cursor it did not issue', async () => {
      for (const query of ['?after=abc', '?after=-1', '?after=1.5', '?after=', '?after=1e3', `?after=${'9'.repeat(20)}`, '?after=1&after=2', '?after=%20']) {
        const res = await get(query);
        expect(res.status, query).toBe(400);
        expect(res.body.error).toBe('invalid_request');
      }
    });
  });

  describe('conditional requests', () => {
    it('answers 304 to If-None-Match with the current ETag, and 200 with a new one after a change', async () => {
      const first = await get();
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^"[^"]+"$/);

      const same = await get().set('If-None-Match', etag);
      expect(same.status).toBe(304);
      expect(same.text).toBe('');

      const one = await signIn();
      await revoke(one.access_token);
      const changed = await get().set('If-None-Match', etag);
      expect(changed.status).toBe(200);
      expect(changed.headers.etag).not.toBe(etag);
      expect(changed.body.entries).toHaveLength(1);

      expect((await get().set('If-None-Match', '"something-else"')).status).toBe(200);
    });

    it('gives each cursor its own ETag', async () => {
      const one = await signIn();
      await revoke(one.access_token);
      const all = await get();
      const after = await get(`?after=${all.body.cursor}`);
      expect(after.headers.etag).not.toBe(all.headers.etag);
      expect((await get(`?after=${all.body.cursor}`).set('If-None-Match', all.headers.etag as string)).status).toBe(200);
    });

    it('is revalidated, never served stale from a cache', async () => {
      const res = await get();
      expect(res.headers['cache-control']).toMatch(/no-cache|no-store/);
    });
  });

  describe('pruning', () => {
    it('drops an entry from the feed once it expires, and from the table at the next prune', async () => {
      const one = await signIn();
      await revoke(one.access_token);
      clock.advance(60);
      const keep = await signIn();
      await revoke(keep.access_token);
      const count = async () => (await t.store.db.selectFrom('deny_list').select('id').execute()).length;
      expect(await count()).toBe(2);

      clock.ms = (claims(one.access_token).exp + t.config.accessTokens.clockToleranceSeconds) * 1000;
      expect((await page()).entries).toEqual([expect.objectContaining({ value: claims(keep.access_token).jti })]);
      expect(await count()).toBe(2);

      await t.app.tick();
      expect(await count()).toBe(1);
      expect((await page()).entries).toEqual([expect.objectContaining({ value: claims(keep.access_token).jti })]);

      clock.advance(60);
      await t.app.tick();
      expect(await count()).toBe(0);
      expect((await page()).entries).toEqual([]);
    });

    it('keeps a live entry through a prune', async () => {
      const one = await signIn();
      await revoke(one.access_token);
      clock.advance(t.config.accessTokens.ttlSeconds - 1);
      await t.app.tick();
      expect((await page()).entries).toHaveLength(1);
    });

    it('keeps cursors working after the entries they pointed at are pruned', async () => {
      const one = await signIn();
      await revoke(one.access_token);
      const { cursor } = await page();
      clock.advance(t.config.accessTokens.ttlSeconds + 60);
      await t.app.tick();
      const two = await signIn();
      await revoke(two.access_token);
      expect((await page(`?after=${cursor}`)).entries).toEqual([expect.objectContaining({ value: claims(two.access_token).jti })]);
    });
  });
});
