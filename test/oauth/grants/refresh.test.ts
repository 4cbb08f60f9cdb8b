// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RefreshTokenMinter } from '../../../src/tokens/refreshTokens.js';
import { FakeClock, type TestApp, basic, createTestApp, decodeJwt, listen, passwordGrant, refreshGrant } from '../../helpers.js';

type Client = { client_id: string; client_secret?: string };

const IDLE = 3600;
const ABSOLUTE = 4 * 3600;

describe('refresh_token grant', () => {
  let t: TestApp;
  let clock: FakeClock;
  let sub: string;
  let web: Client;

  beforeEach(async () => {
    clock = new FakeClock();
    t = await createTestApp({ clock, config: { refreshTokens: { idleTtlSeconds: IDLE, absoluteTtlSeconds: ABSOLUTE } } });
    sub = await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read todos:write', audience: 'todo-api' });
  });
  afterEach(() => t.close());

  async function signIn(client: Client = web, extra: Record<string, string> = {}) {
    const res = await passwordGrant(t, client, 'alice', undefined, extra);
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string; scope: string };
  }

  const tokenRow = (token: string) => t.store.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', RefreshTokenMinter.hash(token)).executeTakeFirst();
  const family = (sid: string) => t.store.db.selectFrom('refresh_token_families').selectAll().where('id', '=', sid).executeTakeFirstOrThrow();

  describe('rotation', () => {
    it('answers with a new access token and a new refresh token in the same family, and spends the old one', async () => {
      const first = await signIn();
      clock.advance(60);
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'todos:read todos:write' });
      expect(res.body.refresh_token).toMatch(/^tgr_/);
      expect(res.body.refresh_token).not.toBe(first.refresh_token);

      const before = decodeJwt(first.access_token).payload;
      const after = decodeJwt(res.body.access_token).payload;
      expect(after).toMatchObject({ sub, sid: before.sid, aud: 'todo-api', client_id: 'web', roles: ['RETRIEVE_TODOS'] });
      expect(after.jti).not.toBe(before.jti);
      expect(after.iat).toBe(Number(before.iat) + 60);

      expect((await tokenRow(first.refresh_token))?.spent_at).toBe(clock.now());
      expect((await tokenRow(res.body.refresh_token))?.spent_at).toBeNull();
    });

    it('carries the user\'s roles as they are at the refresh, in order, and none for a user without roles (RFC 9068 §7.2.1.1)', async () => {
      const first = await signIn();
      await t.app.services.users.changeRoles('alice', ['ZED_ADMIN', 'AUDITOR'], []);
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(decodeJwt(res.body.access_token).payload.roles).toEqual(['AUDITOR', 'RETRIEVE_TODOS', 'ZED_ADMIN']);

      await t.addUser('bob');
      const bob = (await passwordGrant(t, web, 'bob')).body as { refresh_token: string };
      const bobs = await refreshGrant(t, web, bob.refresh_token);
      expect(bobs.status).toBe(200);
      expect(decodeJwt(bobs.body.access_token).payload.roles ?? []).toEqual([]);
    });

    it('keeps rotating: each successor works once', async () => {
      let token = (await signIn()).refresh_token;
      const seen = new Set([token]);
      for (let i = 0; i < 5; i++) {
        clock.advance(10);
        const res = await refreshGrant(t, web, token);
        expect(res.status).toBe(200);
        token = res.body.refresh_token;
        expect(seen.has(token)).toBe(false);
        seen.add(token);
      }
    });

    it("picks up the user's current roles", async () => {
      const first = await signIn();
      await t.app.services.users.changeRoles('alice', ['TODO_WRITER'], ['RETRIEVE_TODOS']);
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(decodeJwt(res.body.access_token).payload.roles).toEqual(['TODO_WRITER']);
    });

    it('accepts client_secret_post', async () => {
      const first = await signIn();
      const res = await t.request.post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'web', client_secret: web.client_secret ?? '' });
      expect(res.status).toBe(200);
    });

    it('works for a public client, which sends only its client_id', async () => {
      await t.addClient('spa', { public: true, grants: ['password', 'refresh_token'] });
      const first = (await t.request.post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: 'correct horse battery staple', client_id: 'spa' })).body;
      const res = await t.request.post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'spa' });
      expect(res.status).toBe(200);
      expect(res.body.refresh_token).not.toBe(first.refresh_token);
    });
  });

  describe('reuse detection (RFC 9700 §4.14.2)', () => {
    it('revokes the whole family when a spent refresh token is replayed, and denies its sid', async () => {
      const first = await signIn();
      clock.advance(60);
      const second = await refreshGrant(t, web, first.refresh_token);
      expect(second.status).toBe(200);
      const sid = String(decodeJwt(first.access_token).payload.sid);
      const lastExp = Number(decodeJwt(second.body.access_token).payload.exp);

      clock.advance(30); // clearly after the spend: not a concurrent request
      const replay = await refreshGrant(t, web, first.refresh_token);
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('invalid_grant');
      expect(replay.headers['cache-control']).toBe('no-store');

      // the successor, held by whoever raced the thief, is dead too
      const successor = await refreshGrant(t, web, second.body.refresh_token);
      expect(successor.status).toBe(400);
      expect(successor.body.error).toBe('invalid_grant');

      const fam = await family(sid);
      expect(fam.revoked_at).toBe(clock.now());
      expect(fam.revoked_reason).toBeTruthy();

      const denied = await t.store.db.selectFrom('deny_list').selectAll().where('type', '=', 'sid').execute();
      expect(denied).toHaveLength(1);
      expect(denied[0]?.value).toBe(sid);
      // the entry lasts until the family's last access token has expired (plus the clock tolerance),
      // at most one TTL longer: the family's horizon is kept one TTL ahead (accessHorizon)
      const { ttlSeconds, clockToleranceSeconds } = t.config.accessTokens;
      expect(Number(denied[0]?.expires_at)).toBeGreaterThanOrEqual(lastExp + clockToleranceSeconds);
      expect(Number(denied[0]?.expires_at)).toBeLessThanOrEqual(lastExp + ttlSeconds + clockToleranceSeconds);

      // and the running server already treats the family's access tokens as denied
      expect(t.app.services.denyList.isDenied(decodeJwt(second.body.access_token).payload as { sid: string })).toBe(true);
      const audit = await t.store.db.selectFrom('audit_events').select('type').where('type', '=', 'refresh.reuse_detected').execute();
      expect(audit).toHaveLength(1);
    });

    it('keeps the family\'s access horizon one TTL ahead: a rotation inside it writes nothing, one past it moves it', async () => {
      const ttl = t.config.accessTokens.ttlSeconds;
      const start = clock.now();
      const first = await signIn();
      const sid = String(decodeJwt(first.access_token).payload.sid);
      expect((await family(sid)).access_expires_at).toBe(start + 2 * ttl * 1000);
      clock.advance(10);
      const second = await refreshGrant(t, web, first.refresh_token);
      expect((await family(sid)).access_expires_at).toBe(start + 2 * ttl * 1000);
      clock.advance(ttl); // the next token would expire after the horizon
      const third = await refreshGrant(t, web, second.body.refresh_token);
      expect(third.status).toBe(200);
      expect((await family(sid)).access_expires_at).toBe(clock.now() + 2 * ttl * 1000);
      expect(Number(decodeJwt(third.body.access_token).payload.exp) * 1000).toBeLessThan((await family(sid)).access_expires_at);
    });

    it('leaves other families of the same user alone', async () => {
      const a = await signIn();
      const b = await signIn();
      clock.advance(10);
      await refreshGrant(t, web, a.refresh_token);
      clock.advance(10);
      expect((await refreshGrant(t, web, a.refresh_token)).body.error).toBe('invalid_grant');
      expect((await refreshGrant(t, web, b.refresh_token)).status).toBe(200);
    });

    it('adds no deny-list entry when every access token of the family has already expired', async () => {
      const first = await signIn();
      clock.advance(10);
      const second = await refreshGrant(t, web, first.refresh_token);
      expect(second.status).toBe(200);
      clock.advance(2 * t.config.accessTokens.ttlSeconds + 100); // past the family's horizon (one TTL beyond the last exp) + tolerance
      expect((await refreshGrant(t, web, first.refresh_token)).body.error).toBe('invalid_grant');
      expect((await refreshGrant(t, web, second.body.refresh_token)).body.error).toBe('invalid_grant');
      expect(await t.store.db.selectFrom('deny_list').selectAll().execute()).toHaveLength(0);
    });

    it('lets exactly one of 20 concurrent refreshes of one token win, without revoking the family', async () => {
      const first = await signIn();
      const server = await listen(t.app);
      try {
        const attempt = () =>
          fetch(`${server.url}/token`, {
            method: 'POST',
            headers: { Authorization: basic(web), 'Content-Type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token }),
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; refresh_token?: string } }));
        const results = await Promise.all(Array.from({ length: 20 }, attempt));
        const winners = results.filter((r) => r.status === 200);
        const losers = results.filter((r) => r.status !== 200);
        expect(winners).toHaveLength(1);
        expect(losers).toHaveLength(19);
        for (const l of losers) expect(l).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

        // a lost race is not a replay: the family lives on and the winner's successor works
        const sid = String(decodeJwt(first.access_token).payload.sid);
        expect((await family(sid)).revoked_at).toBeNull();
        expect(await t.store.db.selectFrom('deny_list').selectAll().execute()).toHaveLength(0);
        clock.advance(10);
        const next = await refreshGrant(t, web, String(winners[0]?.body.refresh_token));
        expect(next.status).toBe(200);
      } finally {
        await server.close();
      }
    });
  });

  describe('expiry', () => {
    it(`refuses a token left unused longer than the idle lifetime`, async () => {
      const first = await signIn();
      clock.advance(IDLE + 1);
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('accepts a token used just inside the idle lifetime', async () => {
      const first = await signIn();
      clock.advance(IDLE - 1);
      expect((await refreshGrant(t, web, first.refresh_token)).status).toBe(200);
    });

    it('ends the family at its absolute lifetime however often it is refreshed', async () => {
      let token = (await signIn()).refresh_token;
      const step = IDLE - 60;
      let elapsed = 0;
      while (elapsed + step < ABSOLUTE) {
        clock.advance(step);
        elapsed += step;
        const res = await refreshGrant(t, web, token);
        expect(res.status).toBe(200);
        token = res.body.refresh_token;
      }
      clock.advance(ABSOLUTE - elapsed + 1);
      const res = await refreshGrant(t, web, token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('does not treat an expired token presented again as a replay', async () => {
      const first = await signIn();
      clock.advance(IDLE + 1);
      await refreshGrant(t, web, first.refresh_token);
      await refreshGrant(t, web, first.refresh_token);
      expect(await t.store.db.selectFrom('deny_list').selectAll().execute()).toHaveLength(0);
    });
  });

  describe('failures', () => {
    it("refuses another client's refresh token with invalid_grant and leaves the family alone", async () => {
      const first = await signIn();
      const other = await t.addClient('other', { grants: ['password', 'refresh_token'], scope: 'todos:read todos:write', audience: 'todo-api' });
      clock.advance(10);
      const res = await refreshGrant(t, other, first.refresh_token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
      expect((await refreshGrant(t, web, first.refresh_token)).status).toBe(200);
    });

    it('refuses a token whose user was disabled (invalid_grant)', async () => {
      const first = await signIn();
      await t.app.services.users.setEnabled('alice', false);
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('checks that the user is enabled even when the family was not revoked', async () => {
      const first = await signIn();
      // disabled behind the service's back: the grant itself must still look
      await t.store.db.updateTable('users').set({ enabled: 0 }).where('id', '=', sub).execute();
      const res = await refreshGrant(t, web, first.refresh_token);
      expect(res.body.error).toBe('invalid_grant');
      // refused, not spent: re-enabled, the token works
      await t.store.db.updateTable('users').set({ enabled: 1 }).where('id', '=', sub).execute();
      expect((await refreshGrant(t, web, first.refresh_token)).status).toBe(200);
    });

    it('refuses a scope wider than the one originally granted with invalid_scope', async () => {
      const first = await signIn(web, { scope: 'todos:read' });
      const res = await refreshGrant(t, web, first.refresh_token, { scope: 'todos:read todos:write' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_scope');
      // the refused request did not spend the token
      expect((await refreshGrant(t, web, first.refresh_token)).status).toBe(200);
    });

    it('grants a narrower scope, and the family keeps its original scope for later refreshes', async () => {
      const first = await signIn();
      const narrow = await refreshGrant(t, web, first.refresh_token, { scope: 'todos:read' });
      expect(narrow.status).toBe(200);
      expect(narrow.body.scope).toBe('todos:read');
      expect(decodeJwt(narrow.body.access_token).payload.scope).toBe('todos:read');
      // RFC 6749 §6: omitted scope means the scope originally granted
      const again = await refreshGrant(t, web, narrow.body.refresh_token);
      expect(again.body.scope).toBe('todos:read todos:write');
    });

    it('refuses a malformed token (bad checksum) with invalid_grant', async () => {
      const first = await signIn();
      const last = first.refresh_token.at(-1) === 'A' ? 'B' : 'A';
      const res = await refreshGrant(t, web, first.refresh_token.slice(0, -1) + last);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it.each([
      ['garbage', 'not-a-token'],
      ['a well-formed token never issued', new RefreshTokenMinter(Buffer.alloc(32)).mint()],
      ['a client secret', 'tgs_' + 'A'.repeat(49)],
    ])('refuses %s with invalid_grant', async (_what, token) => {
      const res = await refreshGrant(t, web, token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('answers a missing refresh_token with invalid_request', async () => {
      const res = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'refresh_token' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    });

    it('refuses a client that is not allowed the refresh_token grant with unauthorized_client', async () => {
      const pw = await t.addClient('pw-only', { grants: ['password'] });
      const first = await signIn(pw);
      const res = await refreshGrant(t, pw, first.refresh_token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('unauthorized_client');
    });

    it('refuses a token whose family was revoked by logging the user out', async () => {
      const first = await signIn();
      await t.app.services.users.logout('alice');
      expect((await refreshGrant(t, web, first.refresh_token)).body.error).toBe('invalid_grant');
    });
  });
});
