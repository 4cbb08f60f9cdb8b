// RFC 6749 §4.3 (resource owner password credentials) with RFC 9068 access tokens.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PASSWORD, type TestApp, basic, createTestApp, decodeJwt, passwordGrant } from '../../helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('password grant', () => {
  let t: TestApp;
  let sub: string;
  let web: { client_id: string; client_secret?: string };

  beforeEach(async () => {
    t = await createTestApp();
    sub = await t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS', 'TODO_WRITER']);
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read todos:write', audience: 'todo-api' });
  });
  afterEach(() => t.close());

  const form = (body: Record<string, string>) => t.request.post('/token').type('form').send(body);

  describe('success', () => {
    it('issues an RFC 9068 access token that verifies with jose against the served JWKS', async () => {
      const res = await passwordGrant(t, web, 'alice');
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'todos:read todos:write' });
      expect(res.body.refresh_token).toMatch(/^tgr_/);

      const jwks = await t.request.get('/.well-known/jwks.json');
      expect(jwks.status).toBe(200);
      const { payload, protectedHeader } = await jwtVerify(res.body.access_token, createLocalJWKSet(JSON.parse(jwks.text)), {
        issuer: 'http://localhost:3000',
        audience: 'todo-api',
        typ: 'at+jwt',
        algorithms: ['ES256'],
        currentDate: new Date(t.clock.now()),
      });
      expect(protectedHeader).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
      expect(typeof protectedHeader.kid).toBe('string');
      expect(JSON.parse(jwks.text).keys.map((k: { kid: string }) => k.kid)).toContain(protectedHeader.kid);

      expect(payload.iss).toBe('http://localhost:3000');
      expect(payload.sub).toBe(sub);
      expect(payload.sub).toMatch(UUID);
      expect(payload.aud).toBe('todo-api');
      expect(payload.iat).toBe(Math.floor(t.clock.now() / 1000));
      expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
      expect(payload.jti).toMatch(UUID);
      expect(payload).toMatchObject({ client_id: 'web', scope: 'todos:read todos:write' });
      expect(payload.roles).toEqual(expect.arrayContaining(['RETRIEVE_TODOS', 'TODO_WRITER']));
      expect(payload.roles).toHaveLength(2);
      expect(payload.sid).toMatch(UUID);
    });

    it('gives every token its own jti and every sign-in its own refresh family (sid)', async () => {
      const a = decodeJwt((await passwordGrant(t, web, 'alice')).body.access_token).payload;
      const b = decodeJwt((await passwordGrant(t, web, 'alice')).body.access_token).payload;
      expect(a.jti).not.toBe(b.jti);
      expect(a.sid).not.toBe(b.sid);
    });

    it('stores the refresh token only as a hash', async () => {
      const res = await passwordGrant(t, web, 'alice');
      const rows = await t.store.db.selectFrom('refresh_tokens').selectAll().execute();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(res.body.refresh_token);
    });

    it('authenticates a confidential client with client_secret_post', async () => {
      const res = await form({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'web', client_secret: web.client_secret ?? '' });
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body.access_token).payload.client_id).toBe('web');
    });

    it('accepts a public client by its client_id alone', async () => {
      await t.addClient('spa', { public: true, grants: ['password', 'refresh_token'], audience: 'todo-api' });
      const res = await form({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'spa' });
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body.access_token).payload).toMatchObject({ sub, client_id: 'spa', aud: 'todo-api' });
      expect(res.body.refresh_token).toMatch(/^tgr_/);
    });

    it('uses the client_id as the audience when the client names none', async () => {
      const cli = await t.addClient('cli', { grants: ['password'] });
      const res = await passwordGrant(t, cli, 'alice');
      expect(decodeJwt(res.body.access_token).payload.aud).toBe('cli');
    });

    it("uses the client's own access-token lifetime when it has one", async () => {
      const short = await t.addClient('short', { grants: ['password'], accessTokenTtl: 60 });
      const res = await passwordGrant(t, short, 'alice');
      expect(res.status).toBe(200);
      expect(res.body.expires_in).toBe(60);
      const { payload } = decodeJwt(res.body.access_token);
      expect(Number(payload.exp) - Number(payload.iat)).toBe(60);
    });

    it('uses the configured default lifetime for other clients', async () => {
      const t2 = await createTestApp({ config: { accessTokens: { ttlSeconds: 120 } } });
      try {
        await t2.addUser('bob');
        const c = await t2.addClient('c', { grants: ['password'] });
        const res = await passwordGrant(t2, c, 'bob');
        expect(res.body.expires_in).toBe(120);
        const { payload } = decodeJwt(res.body.access_token);
        expect(Number(payload.exp) - Number(payload.iat)).toBe(120);
      } finally {
        await t2.close();
      }
    });

    it('signs with the active key: the kid names a key in the JWKS', async () => {
      const res = await passwordGrant(t, web, 'alice');
      const { kid } = decodeProtectedHeader(res.body.access_token);
      const active = await t.store.db.selectFrom('signing_keys').select('kid').where('state', '=', 'active').executeTakeFirstOrThrow();
      expect(kid).toBe(active.kid);
    });
  });

  describe('scope (RFC 6749 §3.3)', () => {
    it("defaults to every scope the client is allowed", async () => {
      const res = await passwordGrant(t, web, 'alice');
      expect(res.body.scope).toBe('todos:read todos:write');
      expect(decodeJwt(res.body.access_token).payload.scope).toBe('todos:read todos:write');
    });

    it('grants a narrower scope when asked', async () => {
      const res = await passwordGrant(t, web, 'alice', PASSWORD, { scope: 'todos:read' });
      expect(res.status).toBe(200);
      expect(res.body.scope).toBe('todos:read');
      expect(decodeJwt(res.body.access_token).payload.scope).toBe('todos:read');
    });

    it('refuses a scope outside the allowed ones with invalid_scope', async () => {
      const res = await passwordGrant(t, web, 'alice', PASSWORD, { scope: 'todos:read admin' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_scope');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('refuses a scope with characters RFC 6749 §3.3 does not allow', async () => {
      const res = await passwordGrant(t, web, 'alice', PASSWORD, { scope: 'todos:"read"' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_scope');
    });
  });

  describe('failures', () => {
    it('answers an unknown user and a wrong password with the same invalid_grant body', async () => {
      const unknown = await passwordGrant(t, web, 'mallory', PASSWORD);
      const wrong = await passwordGrant(t, web, 'alice', 'not the password');
      expect(unknown.status).toBe(400);
      expect(wrong.status).toBe(400);
      expect(unknown.body.error).toBe('invalid_grant');
      expect(unknown.text).toBe(wrong.text);
      expect(unknown.headers['cache-control']).toBe('no-store');
      expect(wrong.headers['cache-control']).toBe('no-store');
    });

    it('runs argon2 against a dummy hash for an unknown user, so both failures cost the same', async () => {
      const dummy = vi.spyOn(t.app.services.hasher, 'verifyDummy');
      const real = vi.spyOn(t.app.services.hasher, 'verify');
      await passwordGrant(t, web, 'mallory');
      expect(dummy).toHaveBeenCalledTimes(1);
      // the dummy check is a real argon2 verification too
      expect(real).toHaveBeenCalledTimes(1);
      await passwordGrant(t, web, 'alice', 'not the password');
      expect(dummy).toHaveBeenCalledTimes(1);
      expect(real).toHaveBeenCalledTimes(2);
      const stored = await t.store.db.selectFrom('users').select('password_hash').where('username', '=', 'alice').executeTakeFirstOrThrow();
      expect(real).toHaveBeenLastCalledWith(stored.password_hash, 'not the password');
    });

    it('refuses a disabled user with the same invalid_grant body', async () => {
      const wrong = await passwordGrant(t, web, 'alice', 'not the password');
      await t.app.services.users.setEnabled('alice', false);
      const res = await passwordGrant(t, web, 'alice');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
      expect(res.text).toBe(wrong.text);
    });

    it('lets a re-enabled user sign in again', async () => {
      await t.app.services.users.setEnabled('alice', false);
      await t.app.services.users.setEnabled('alice', true);
      expect((await passwordGrant(t, web, 'alice')).status).toBe(200);
    });

    it('is case-sensitive about the password', async () => {
      const res = await passwordGrant(t, web, 'alice', PASSWORD.toUpperCase());
      expect(res.body.error).toBe('invalid_grant');
    });

    it('refuses a client that is not allowed the password grant with unauthorized_client', async () => {
      const machine = await t.addClient('machine', { grants: ['client_credentials'] });
      const res = await passwordGrant(t, machine, 'alice');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('unauthorized_client');
    });

    it('refuses a public client that is not allowed the password grant', async () => {
      await t.addClient('spa', { public: true, grants: ['refresh_token'] });
      const res = await form({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'spa' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('unauthorized_client');
    });

    it.each([
      ['username', { password: PASSWORD }],
      ['password', { username: 'alice' }],
      ['empty username', { username: '', password: PASSWORD }],
      ['empty password', { username: 'alice', password: '' }],
    ])('answers a missing %s with invalid_request', async (_what, params) => {
      const res = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'password', ...params });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('refuses a wrong client secret with 401 invalid_client before looking at the user', async () => {
      const res = await passwordGrant(t, { client_id: 'web', client_secret: 'tgs_wrong' }, 'alice');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    });

    it('refuses a confidential client that sends no secret', async () => {
      const res = await form({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'web' });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('refuses a public client that sends a secret', async () => {
      await t.addClient('spa', { public: true, grants: ['password'] });
      const res = await form({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'spa', client_secret: web.client_secret ?? '' });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('issues nothing on failure: no refresh family is created', async () => {
      await passwordGrant(t, web, 'alice', 'not the password');
      await passwordGrant(t, web, 'mallory');
      const families = await t.store.db.selectFrom('refresh_token_families').selectAll().execute();
      expect(families).toHaveLength(0);
    });
  });
});
