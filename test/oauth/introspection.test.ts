// POST /introspect (RFC 7662): only confidential clients may ask; an active access token shows the
// members the issue lists and nothing else; anything not active is exactly {"active": false}.
import crypto from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seconds } from '../../src/clock.js';
import { type FakeClock, PASSWORD, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };
const ACCESS_FIELDS = ['active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub', 'token_type'];

describe('POST /introspect (RFC 7662)', () => {
  let t: TestApp;
  let clock: FakeClock;
  let web: Creds;
  let api: Creds;
  let sub: string;

  beforeEach(async () => {
    t = await createTestApp();
    clock = t.clock as FakeClock;
    sub = await t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
    web = await t.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api', scope: 'todos:read todos:write' });
    api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  });
  afterEach(() => t.close());

  const post = (form: Record<string, string>, client: Creds = api) => t.request.post('/introspect').set('Authorization', basic(client)).type('form').send(form);
  const introspect = async (token: string, hint?: string) => {
    const res = await post(hint ? { token, token_type_hint: hint } : { token });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    return res.body as Record<string, unknown>;
  };
  const signIn = async () => {
    const res = await passwordGrant(t, web, 'alice');
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string };
  };
  const deny = async (entries: Parameters<TestApp['app']['services']['denyList']['add']>[0]) => {
    await t.app.services.denyList.add(entries);
    await t.app.services.denyList.sync();
  };

  describe('client authentication', () => {
    it('answers 401 invalid_client without credentials', async () => {
      const { access_token } = await signIn();
      const res = await t.request.post('/introspect').type('form').send({ token: access_token });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: 'invalid_client' });
      expect(res.body.active).toBeUndefined();
      expect(res.headers['cache-control']).toContain('no-store');
    });

    it('answers 401 invalid_client for a wrong secret, with a Basic challenge', async () => {
      const { access_token } = await signIn();
      const res = await post({ token: access_token }, { client_id: 'todo-api', client_secret: 'tgs_wrong' });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    });

    it('refuses public clients: they hold no secret to prove who is asking', async () => {
      await t.addClient('spa', { public: true, grants: ['password'] });
      const { access_token } = await signIn();
      const res = await t.request.post('/introspect').type('form').send({ client_id: 'spa', token: access_token });
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    });

    it('answers 400 invalid_request without a token parameter', async () => {
      const res = await post({});
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
      expect(res.headers['cache-control']).toContain('no-store');
    });
  });

  describe('access tokens', () => {
    it('answers an active token with exactly the listed members, taken from its claims', async () => {
      const { access_token } = await signIn();
      const { payload } = decodeJwt(access_token);
      const body = await introspect(access_token);
      expect(Object.keys(body).sort()).toEqual(ACCESS_FIELDS);
      expect(body).toEqual({
        active: true,
        scope: 'todos:read todos:write',
        client_id: 'web',
        sub,
        aud: 'todo-api',
        iss: 'http://localhost:3000',
        exp: payload.exp,
        iat: seconds(clock.now()),
        jti: payload.jti,
        token_type: 'Bearer',
      });
      // roles and sid stay in the JWT
      expect(payload.sid).toBeTypeOf('string');
      expect(payload.roles).toEqual(['RETRIEVE_TODOS']);
    });

    it('answers a client_credentials token with the client as its sub', async () => {
      const cc = await t.request.post('/token').set('Authorization', basic(api)).type('form').send({ grant_type: 'client_credentials' });
      expect(cc.status).toBe(200);
      const body = await introspect(cc.body.access_token);
      expect(body).toMatchObject({ active: true, sub: 'todo-api', client_id: 'todo-api', token_type: 'Bearer' });
      expect(Object.keys(body).sort()).toEqual(ACCESS_FIELDS);
    });

    it('answers exactly {"active": false} once the token has expired (past the clock tolerance)', async () => {
      const { access_token } = await signIn();
      const { exp } = decodeJwt(access_token).payload as { exp: number };
      clock.ms = (exp + t.config.accessTokens.clockToleranceSeconds - 1) * 1000;
      expect((await introspect(access_token)).active).toBe(true);
      clock.ms = (exp + t.config.accessTokens.clockToleranceSeconds) * 1000;
      expect(await introspect(access_token)).toEqual({ active: false });
    });

    it('ignores the hint: an access token sent as a refresh_token (or an unknown type) is still found', async () => {
      const { access_token } = await signIn();
      expect((await introspect(access_token, 'refresh_token')).active).toBe(true);
      expect((await introspect(access_token, 'id_token')).active).toBe(true);
    });

    it('answers {"active": false} once the signing key has been removed (unpublished)', async () => {
      const { access_token } = await signIn();
      const { kid } = decodeJwt(access_token).header as { kid: string };
      await t.app.services.keys.rotate('ES256');
      await t.app.services.keyring.refresh();
      // a rotated-out key still verifies the tokens it signed...
      expect((await introspect(access_token)).active).toBe(true);
      await t.app.services.keys.remove(kid, { force: true });
      await t.app.services.keyring.refresh();
      // ...until it is removed
      expect(await introspect(access_token)).toEqual({ active: false });
    });
  });

  describe('the deny list', () => {
    it('denies a token whose jti is listed', async () => {
      const { access_token } = await signIn();
      const { jti, exp } = decodeJwt(access_token).payload as { jti: string; exp: number };
      await deny([{ type: 'jti', value: jti, expires_at: exp + 5 }]);
      expect(await introspect(access_token)).toEqual({ active: false });
    });

    it('denies a token whose sid (refresh family) is listed', async () => {
      const { access_token } = await signIn();
      const { sid, exp } = decodeJwt(access_token).payload as { sid: string; exp: number };
      await deny([{ type: 'sid', value: sid, expires_at: exp + 5 }]);
      expect(await introspect(access_token)).toEqual({ active: false });
    });

    it('denies a token issued in the same second as a sub entry (fail closed)', async () => {
      const { access_token } = await signIn();
      const { iat, exp } = decodeJwt(access_token).payload as { iat: number; exp: number };
      await deny([{ type: 'sub', value: sub, issued_before: iat, expires_at: exp + 5 }]);
      expect(await introspect(access_token)).toEqual({ active: false });
    });

    it('denies a token issued before a sub entry, and accepts one issued a second after it', async () => {
      const old = await signIn();
      clock.advance(30);
      const now = seconds(clock.now());
      await deny([{ type: 'sub', value: sub, issued_before: now, expires_at: now + 305 }]);
      expect(await introspect(old.access_token)).toEqual({ active: false });
      clock.advance(1);
      const fresh = await signIn();
      expect((await introspect(fresh.access_token)).active).toBe(true);
    });

    it('ignores entries for other values and entries that have expired', async () => {
      const { access_token } = await signIn();
      const { jti, iat } = decodeJwt(access_token).payload as { jti: string; iat: number };
      await deny([
        { type: 'jti', value: crypto.randomUUID(), expires_at: iat + 1000 },
        { type: 'sid', value: crypto.randomUUID(), expires_at: iat + 1000 },
        { type: 'sub', value: crypto.randomUUID(), issued_before: iat + 10, expires_at: iat + 1000 },
        { type: 'jti', value: jti, expires_at: iat },
      ]);
      expect((await introspect(access_token)).active).toBe(true);
    });
  });

  describe('refresh tokens', () => {
    it('answers an unspent, unrevoked, unexpired refresh token as active', async () => {
      const { refresh_token, access_token } = await signIn();
      const body = await introspect(refresh_token);
      expect(body).toEqual({
        active: true,
        scope: 'todos:read todos:write',
        client_id: 'web',
        sub,
        iss: 'http://localhost:3000',
        exp: seconds(clock.now()) + t.config.refreshTokens.idleTtlSeconds,
        iat: seconds(clock.now()),
        token_type: 'refresh_token',
      });
      expect((await introspect(refresh_token, 'access_token')).active).toBe(true);
      expect((await introspect(access_token)).active).toBe(true);
    });

    it('answers a spent refresh token as inactive, and its successor as active', async () => {
      const { refresh_token } = await signIn();
      const rotated = await refreshGrant(t, web, refresh_token);
      expect(await introspect(refresh_token)).toEqual({ active: false });
      expect((await introspect(rotated.body.refresh_token)).active).toBe(true);
    });

    it('answers a revoked refresh token as inactive', async () => {
      const { refresh_token } = await signIn();
      await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: refresh_token });
      expect(await introspect(refresh_token)).toEqual({ active: false });
    });

    it('answers an expired refresh token as inactive', async () => {
      const { refresh_token } = await signIn();
      clock.advance(t.config.refreshTokens.idleTtlSeconds - 1);
      expect((await introspect(refresh_token)).active).toBe(true);
      clock.advance(1);
      expect(await introspect(refresh_token)).toEqual({ active: false });
    });
  });

  describe('tokens that are not ours', () => {
    const forge = async (header: Record<string, unknown>, claims: Record<string, unknown>, key?: Parameters<SignJWT['sign']>[0]) => {
      const signing = key ?? t.app.services.keyring.signingKey().privateKey;
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...header }).sign(signing);
    };
    // jose refuses to sign some of the headers under test: sign the bytes directly (ES256, r||s)
    const signRaw = async (header: Record<string, unknown>, claims: Record<string, unknown>) => {
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, t.app.services.keyring.signingKey().privateKey, new TextEncoder().encode(input));
      return `${input}.${Buffer.from(sig).toString('base64url')}`;
    };
    const goodClaims = () => {
      const now = seconds(clock.now());
      return { iss: 'http://localhost:3000', sub, aud: 'todo-api', iat: now, exp: now + 300, jti: crypto.randomUUID(), client_id: 'web', scope: 'todos:read' };
    };

    it('accepts a token forged with our own key (the forging helpers are sound)', async () => {
      const { kid } = t.app.services.keyring.signingKey();
      expect((await introspect(await forge({ kid, typ: 'at+jwt' }, goodClaims()))).active).toBe(true);
      expect((await introspect(await signRaw({ alg: 'ES256', kid, typ: 'at+jwt' }, goodClaims()))).active).toBe(true);
    });

    it('refuses wrong typ, wrong iss, a foreign key under our kid, alg none, HS256 keyed with our public key, jku and crit', async () => {
      const { kid } = t.app.services.keyring.signingKey();
      const foreign = await generateKeyPair('ES256');
      const publicJwk = await exportJWK((await generateKeyPair('ES256')).publicKey);
      const ourPublic = JSON.parse(t.app.services.keyring.jwks().body).keys[0];
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(goodClaims())).toString('base64url')}.`;
      const hs256 = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(new TextEncoder().encode(JSON.stringify(ourPublic)));
      const tokens = [
        await forge({ kid, typ: 'JWT' }, goodClaims()),
        await forge({ kid }, goodClaims()),
        await forge({ kid, typ: 'at+jwt' }, { ...goodClaims(), iss: 'https://evil.example' }),
        await forge({ kid, typ: 'at+jwt' }, goodClaims(), foreign.privateKey),
        await forge({ kid: 'unknown-kid', typ: 'at+jwt' }, goodClaims()),
        await forge({ typ: 'at+jwt' }, goodClaims()),
        await forge({ kid, typ: 'at+jwt', jwk: publicJwk }, goodClaims()),
        await forge({ kid, typ: 'at+jwt', jku: 'https://evil.example/jwks.json' }, goodClaims()),
        await signRaw({ alg: 'ES256', kid, typ: 'at+jwt', crit: ['urn:example:bind'], 'urn:example:bind': true }, goodClaims()),
        none,
        hs256,
      ];
      for (const token of tokens) expect(await introspect(token), JSON.stringify(decodeJwt(token).header)).toEqual({ active: false });
    });

    it('answers exactly {"active": false} for any garbage string, never a 500', async () => {
      const { access_token, refresh_token } = await signIn();
      const [h, p] = access_token.split('.');
      const garbage = [
        ' ',
        'x'.repeat(12_000),
        'not a token',
        'a.b.c',
        '...',
        'eyJ.eyJ.eyJ',
        `${h}.${p}`,
        `${h}.${p}.`,
        `${h}.${p}.${'A'.repeat(86)}`,
        `${access_token}.extra`,
        `${Buffer.from('[1,2]').toString('base64url')}.${p}.sig`,
        `${Buffer.from('{"alg":"ES256","kid":123}').toString('base64url')}.${p}.sig`,
        `${Buffer.from('not json').toString('base64url')}.${p}.sig`,
        'tgr_',
        `${refresh_token}x`,
        refresh_token.replace(/^tgr_/, 'tgs_'),
        '🔑 тест 令牌',
        '\u0000\u0001\u0002',
        '%00%ff',
      ];
      for (const token of garbage) {
        const res = await post({ token });
        expect(res.status, JSON.stringify(token.slice(0, 40))).toBe(200);
        expect(res.body).toEqual({ active: false });
      }
    });

    it('takes token= as a missing token: 400 invalid_request (an empty parameter is omitted, RFC 6749 §3.2)', async () => {
      const res = await post({ token: '' });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    });

    it('answers 413, not 500, for a body over the size limit', async () => {
      const res = await post({ token: 'x'.repeat(t.config.server.bodyLimitBytes + 1) });
      expect(res.status).toBe(413);
      expect(res.body.error).toBe('invalid_request');
    });
  });
});
