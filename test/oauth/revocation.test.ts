// POST /revoke (RFC 7009): client authentication, refresh tokens revoke their family, access
// tokens are denied by jti, and every token the server can't or mustn't revoke is a quiet 200.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeClock, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };

describe('POST /revoke (RFC 7009)', () => {
  let t: TestApp;
  let web: Creds;
  let api: Creds;
  let other: Creds;

  beforeEach(async () => {
    t = await createTestApp();
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api', scope: 'todos:read' });
    other = await t.addClient('other', { grants: ['password', 'refresh_token'], audience: 'todo-api' });
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  });
  afterEach(() => t.close());

  const revoke = (client: Creds, form: Record<string, string>) => t.request.post('/revoke').set('Authorization', basic(client)).type('form').send(form);
  const introspect = async (token: string) => (await t.request.post('/introspect').set('Authorization', basic(api)).type('form').send({ token })).body as Record<string, unknown>;
  const feed = async () => (await t.request.get('/deny-list').set('Authorization', basic(api))).body as { cursor: string; entries: Array<Record<string, unknown>> };
  const signIn = async (client: Creds = web) => {
    const res = await passwordGrant(t, client, 'alice');
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string };
  };

  describe('client authentication', () => {
    it('answers 401 invalid_client without client credentials, and revokes nothing', async () => {
      const tokens = await signIn();
      const res = await t.request.post('/revoke').type('form').send({ token: tokens.refresh_token });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['cache-control']).toContain('no-store');
      expect((await introspect(tokens.refresh_token)).active).toBe(true);
    });

    it('answers 401 invalid_client with a Basic challenge for a wrong secret', async () => {
      const tokens = await signIn();
      const res = await revoke({ client_id: 'web', client_secret: 'tgs_wrong' }, { token: tokens.access_token });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
      expect((await introspect(tokens.access_token)).active).toBe(true);
    });

    it('answers 401 invalid_client for an unknown client', async () => {
      const res = await revoke({ client_id: 'nobody', client_secret: web.client_secret ?? '' }, { token: 'x' });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('accepts client_secret_post as well as client_secret_basic', async () => {
      const tokens = await signIn();
      const res = await t.request.post('/revoke').type('form').send({ client_id: 'web', client_secret: web.client_secret ?? '', token: tokens.access_token });
      expect(res.status).toBe(200);
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
    });
  });

  describe('malformed requests', () => {
    it('answers 400 invalid_request when the token parameter is missing or empty', async () => {
      for (const form of [{}, { token: '' }, { token_type_hint: 'access_token' }] as Array<Record<string, string>>) {
        const res = await revoke(web, form);
        expect(res.status).toBe(400);
        expect(res.body.error).toBe('invalid_request');
        expect(res.headers['cache-control']).toContain('no-store');
      }
    });

    it('answers 400 invalid_request for a body that is not form-encoded', async () => {
      const tokens = await signIn();
      const res = await t.request.post('/revoke').set('Authorization', basic(web)).set('Content-Type', 'application/json').send(JSON.stringify({ token: tokens.access_token }));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
      expect((await introspect(tokens.access_token)).active).toBe(true);
    });

    it('answers 400 invalid_request when the token is sent twice', async () => {
      const tokens = await signIn();
      const res = await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send(`token=${tokens.access_token}&token=${tokens.refresh_token}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    });
  });

  describe('refresh tokens', () => {
    it('revokes the whole family: the successor and the family\'s access tokens become inactive, and the sid is denied', async () => {
      const first = await signIn();
      const rotated = await refreshGrant(t, web, first.refresh_token);
      expect(rotated.status).toBe(200);
      const { sid, exp } = decodeJwt(rotated.body.access_token).payload as { sid: string; exp: number };

      const res = await revoke(web, { token: rotated.body.refresh_token, token_type_hint: 'refresh_token' });
      expect(res.status).toBe(200);
      expect(res.text).toBe('');
      expect(res.headers['cache-control']).toContain('no-store');

      expect(await introspect(rotated.body.refresh_token)).toEqual({ active: false });
      expect(await introspect(rotated.body.access_token)).toEqual({ active: false });
      expect(await introspect(first.access_token)).toEqual({ active: false });
      expect((await refreshGrant(t, web, rotated.body.refresh_token)).body.error).toBe('invalid_grant');
      // the sid entry lasts as long as the family's newest access token (+ clock tolerance), at most one TTL more
      const { ttlSeconds, clockToleranceSeconds } = t.config.accessTokens;
      expect((await feed()).entries).toEqual([{ type: 'sid', value: sid, expires_at: expect.any(Number) }]);
      const [entry] = (await feed()).entries as { expires_at: number }[];
      expect(entry?.expires_at).toBeGreaterThanOrEqual(exp + clockToleranceSeconds);
      expect(entry?.expires_at).toBeLessThanOrEqual(exp + ttlSeconds + clockToleranceSeconds);
    });

    it('revokes the family when the spent predecessor is the token presented', async () => {
      const first = await signIn();
      const rotated = await refreshGrant(t, web, first.refresh_token);
      expect((await revoke(web, { token: first.refresh_token })).status).toBe(200);
      expect(await introspect(rotated.body.refresh_token)).toEqual({ active: false });
      expect(await introspect(rotated.body.access_token)).toEqual({ active: false });
    });

    it('leaves the user\'s other sessions alone', async () => {
      const one = await signIn();
      const two = await signIn();
      await revoke(web, { token: one.refresh_token });
      expect((await introspect(two.refresh_token)).active).toBe(true);
      expect((await introspect(two.access_token)).active).toBe(true);
    });

    it('records token.revoked in the audit trail', async () => {
      const tokens = await signIn();
      await revoke(web, { token: tokens.refresh_token });
      const events = await t.store.db.selectFrom('audit_events').selectAll().where('type', '=', 'token.revoked').execute();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ client_id: 'web' });
      expect(JSON.stringify(events)).not.toContain(tokens.refresh_token);
    });

    it('is idempotent: revoking a revoked family again answers 200 and adds no entry', async () => {
      const tokens = await signIn();
      await revoke(web, { token: tokens.refresh_token });
      const before = await feed();
      expect((await revoke(web, { token: tokens.refresh_token })).status).toBe(200);
      expect(await feed()).toEqual(before);
    });
  });

  describe('access tokens', () => {
    it('denies the jti until the token expires (plus clock tolerance), and leaves the refresh token alone', async () => {
      const tokens = await signIn();
      const { jti, exp } = decodeJwt(tokens.access_token).payload as { jti: string; exp: number };
      const res = await revoke(web, { token: tokens.access_token, token_type_hint: 'access_token' });
      expect(res.status).toBe(200);
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
      const expiresAt = exp + t.config.accessTokens.clockToleranceSeconds;
      expect((await feed()).entries).toEqual([{ type: 'jti', value: jti, expires_at: expiresAt }]);
      expect((await introspect(tokens.refresh_token)).active).toBe(true);

      // once every token the entry could deny has expired, it leaves the feed
      (t.clock as FakeClock).ms = expiresAt * 1000;
      expect((await feed()).entries).toEqual([]);
    });

    it('revokes a client_credentials token', async () => {
      const svc = await t.addClient('svc', { grants: ['client_credentials'] });
      const cc = await t.request.post('/token').set('Authorization', basic(svc)).type('form').send({ grant_type: 'client_credentials' });
      expect(cc.status).toBe(200);
      expect((await revoke(svc, { token: cc.body.access_token })).status).toBe(200);
      expect(await introspect(cc.body.access_token)).toEqual({ active: false });
    });

    it('is idempotent: revoking it again answers 200 and adds no entry', async () => {
      const tokens = await signIn();
      await revoke(web, { token: tokens.access_token });
      await revoke(web, { token: tokens.access_token });
      expect((await feed()).entries).toHaveLength(1);
    });

    it('keeps a token it revokes out of the cache of verified tokens (memory for tokens still in use)', async () => {
      const tokens = await signIn();
      const before = t.app.services.accessTokens.remembered;
      expect((await revoke(web, { token: tokens.access_token, token_type_hint: 'access_token' })).status).toBe(200);
      expect(t.app.services.accessTokens.remembered).toBe(before);
      // introspection still remembers what it verified
      await introspect(tokens.access_token);
      expect(t.app.services.accessTokens.remembered).toBe(before + 1);
    });
  });

  describe('token_type_hint (§2.1)', () => {
    it('finds a refresh token sent with the access_token hint', async () => {
      const tokens = await signIn();
      expect((await revoke(web, { token: tokens.refresh_token, token_type_hint: 'access_token' })).status).toBe(200);
      expect(await introspect(tokens.refresh_token)).toEqual({ active: false });
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
    });

    it('finds an access token sent with the refresh_token hint', async () => {
      const tokens = await signIn();
      expect((await revoke(web, { token: tokens.access_token, token_type_hint: 'refresh_token' })).status).toBe(200);
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
    });

    it('still revokes one of our tokens sent with a hint naming a type this server does not issue', async () => {
      const tokens = await signIn();
      expect((await revoke(web, { token: tokens.refresh_token, token_type_hint: 'id_token' })).status).toBe(200);
      expect(await introspect(tokens.refresh_token)).toEqual({ active: false });
    });

    it('answers 400 unsupported_token_type for a token of a type this server does not issue (§2.2.1)', async () => {
      for (const hint of ['id_token', 'urn:ietf:params:oauth:token-type:saml2', 'pct', 'ACCESS_TOKEN']) {
        const res = await revoke(web, { token: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln', token_type_hint: hint });
        expect(res.status).toBe(400);
        expect(res.body.error).toBe('unsupported_token_type');
        expect(res.body.error_description).toMatch(/^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/);
        expect(res.headers['cache-control']).toContain('no-store');
      }
    });
  });

  describe('tokens that are not revoked (§2.2: still 200)', () => {
    it('answers 200 for unknown, malformed and expired tokens and adds nothing to the deny list', async () => {
      const tokens = await signIn();
      const unknownRefresh = t.app.services.refreshTokens.mint();
      const tampered = `${tokens.access_token.slice(0, -4)}AAAA`;
      const candidates = [unknownRefresh, `${tokens.refresh_token.slice(0, -1)}x`, 'garbage', 'a.b.c', tampered, '🔑', 'x'.repeat(9000)];
      for (const token of candidates) {
        const res = await revoke(web, { token });
        expect(res.status, token.slice(0, 40)).toBe(200);
      }
      (t.clock as FakeClock).advance(t.config.accessTokens.ttlSeconds + t.config.accessTokens.clockToleranceSeconds + 1);
      expect((await revoke(web, { token: tokens.access_token })).status).toBe(200);
      expect((await feed()).entries).toEqual([]);
      expect((await introspect(tokens.refresh_token)).active).toBe(true);
    });

    it('answers 200 for another client\'s tokens and revokes nothing', async () => {
      const tokens = await signIn();
      for (const token of [tokens.refresh_token, tokens.access_token]) {
        for (const hint of [undefined, 'access_token', 'refresh_token']) {
          const res = await revoke(other, hint ? { token, token_type_hint: hint } : { token });
          expect(res.status).toBe(200);
        }
      }
      expect((await introspect(tokens.refresh_token)).active).toBe(true);
      expect((await introspect(tokens.access_token)).active).toBe(true);
      expect((await feed()).entries).toEqual([]);
      expect((await refreshGrant(t, web, tokens.refresh_token)).status).toBe(200);
    });
  });

  describe('public clients', () => {
    let spa: Creds;
    beforeEach(async () => {
      spa = await t.addClient('spa', { public: true, grants: ['password', 'refresh_token'], audience: 'todo-api' });
    });
    const publicSignIn = async () => {
      const res = await t.request.post('/token').type('form').send({ grant_type: 'password', client_id: spa.client_id, username: 'alice', password: 'correct horse battery staple' });
      expect(res.status).toBe(200);
      return res.body as { access_token: string; refresh_token: string };
    };

    it('may revoke its own tokens with only its client_id', async () => {
      const tokens = await publicSignIn();
      const res = await t.request.post('/revoke').type('form').send({ client_id: 'spa', token: tokens.refresh_token });
      expect(res.status).toBe(200);
      expect(await introspect(tokens.refresh_token)).toEqual({ active: false });
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
    });

    it('cannot revoke another client\'s tokens', async () => {
      const tokens = await signIn();
      const res = await t.request.post('/revoke').type('form').send({ client_id: 'spa', token: tokens.refresh_token });
      expect(res.status).toBe(200);
      expect((await introspect(tokens.refresh_token)).active).toBe(true);
    });

    it('is refused when it sends a secret it does not have', async () => {
      const tokens = await publicSignIn();
      const res = await t.request.post('/revoke').type('form').send({ client_id: 'spa', client_secret: 'tgs_made_up', token: tokens.refresh_token });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect((await introspect(tokens.refresh_token)).active).toBe(true);
    });
  });
});
