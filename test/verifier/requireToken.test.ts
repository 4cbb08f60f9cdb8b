// requireToken: RFC 6750 answers in front of a Koa route. The verifier is a stub here (its own
// tests cover verification); one case runs against a real Tollgate token end to end.
import http from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../helpers.js';
import { type AccessTokenClaims, type TokenState, VerificationError, type Verifier, createVerifier, requireToken } from '../../src/verifier/index.js';
import type { VerificationErrorCode } from '../../src/verifier/index.js';
import { claims, login, signAsTollgate, startTollgate } from './fixtures.js';

const GOOD: AccessTokenClaims = { iss: 'https://auth.example', sub: 'user-1', aud: 'todo-api', exp: 2e9, iat: 1e9, jti: 'j', client_id: 'web', scope: 'todos:read profile', roles: ['RETRIEVE_TODOS'] };

function stub(outcome: AccessTokenClaims | VerificationErrorCode | Error, audience: string | string[] = 'todo-api'): Verifier & { seen: string[] } {
  const seen: string[] = [];
  return {
    issuer: 'https://auth.example',
    audience,
    seen,
    ready: async () => {},
    close: () => {},
    async verify(token) {
      seen.push(token);
      // a message with CR LF, as a verifier that reflected the token's alg would make: never sent
      if (typeof outcome === 'string') throw new VerificationError(outcome, `failed: ${outcome}\r\nX-Injected: 1`);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
  };
}

function app(verifier: Verifier, options: Parameters<typeof requireToken>[1] = {}) {
  const koa = new Koa();
  koa.silent = true;
  const router = new Router<TokenState>();
  router.get('/todos', requireToken(verifier, options), (ctx) => {
    ctx.body = { sub: ctx.state.claims.sub, token: ctx.state.token };
  });
  koa.use(router.routes());
  return supertest(http.createServer(koa.callback()));
}

describe('requireToken', () => {
  it('lets a valid token through and puts its claims and the token on ctx.state', async () => {
    const v = stub(GOOD);
    const res = await app(v, { roles: ['RETRIEVE_TODOS'], scope: 'todos:read' }).get('/todos').set('Authorization', 'Bearer abc.def.ghi');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sub: 'user-1', token: 'abc.def.ghi' });
    expect(v.seen).toEqual(['abc.def.ghi']);
  });

  it('accepts the scheme in any case (RFC 7235 §2.1)', async () => {
    expect((await app(stub(GOOD)).get('/todos').set('Authorization', 'bearer abc')).status).toBe(200);
  });

  it('answers a request without credentials 401 with a bare challenge and no error information in the body either (RFC 6750 §3.1)', async () => {
    const res = await app(stub(GOOD)).get('/todos');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api"');
    expect(res.text).not.toMatch(/error/);
  });

  it('treats another scheme (Basic) as no bearer token', async () => {
    const res = await app(stub(GOOD)).get('/todos').set('Authorization', 'Basic dXNlcjpwYXNz');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api"');
  });

  it.each(['Bearer', 'Bearer ', 'Bearer a b', 'Bearer ab"c', 'Bearer =abc'])('answers a malformed header %j 401 invalid_token', async (header) => {
    const v = stub(GOOD);
    const res = await app(v).get('/todos').set('Authorization', header);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="todo-api", error="invalid_token"/);
    expect(v.seen).toEqual([]);
  });

  it.each([
    ['ERR_TOKEN_EXPIRED', 'the access token has expired'],
    ['ERR_TOKEN_REVOKED', 'the token has been revoked'],
    ['ERR_TOKEN_SIGNATURE', 'the access token signature does not verify'],
    ['ERR_TOKEN_AUDIENCE', 'the access token is not for this API'],
  ] as const)('answers %s 401 invalid_token with the fixed description of the code, never the error message', async (code, description) => {
    const res = await app(stub(code)).get('/todos').set('Authorization', 'Bearer abc');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="todo-api", error="invalid_token", error_description="${description}"`);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({ error: 'invalid_token', error_description: description });
  });

  it('answers a missing role 403 insufficient_scope', async () => {
    const res = await app(stub({ ...GOOD, roles: [] }), { roles: ['RETRIEVE_TODOS'] }).get('/todos').set('Authorization', 'Bearer abc');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="todo-api", error="insufficient_scope", error_description="requires the role RETRIEVE_TODOS"$/);
  });

  it('answers a token without roles 403 when roles are required', async () => {
    const { roles: _roles, ...noRoles } = GOOD;
    expect((await app(stub(noRoles), { roles: ['RETRIEVE_TODOS'] }).get('/todos').set('Authorization', 'Bearer abc')).status).toBe(403);
  });

  it('answers a missing scope 403 insufficient_scope naming the scope required (RFC 6750 §3)', async () => {
    const res = await app(stub(GOOD), { scope: 'todos:read todos:write' }).get('/todos').set('Authorization', 'Bearer abc');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api", error="insufficient_scope", error_description="requires the scope todos:write", scope="todos:read todos:write"');
  });

  it('refuses a token in the query string with 400 invalid_request, even beside a good header (RFC 9700 §4.3.2)', async () => {
    const v = stub(GOOD);
    for (const name of ['access_token', 'ACCESS_TOKEN']) {
      const res = await app(v).get(`/todos?${name}=abc`).set('Authorization', 'Bearer abc');
      expect(res.status).toBe(400);
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_request"/);
    }
    expect(v.seen).toEqual([]);
  });

  it('lets unrelated query parameters through', async () => {
    expect((await app(stub(GOOD)).get('/todos?status=open').set('Authorization', 'Bearer abc')).status).toBe(200);
  });

  it('answers 503 with Retry-After when the deny list or the JWK Set is unavailable (not the token\'s fault)', async () => {
    for (const code of ['ERR_DENY_LIST_UNAVAILABLE', 'ERR_JWKS_UNAVAILABLE'] as const) {
      const res = await app(stub(code)).get('/todos').set('Authorization', 'Bearer abc');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.headers['www-authenticate']).toBeUndefined();
    }
  });

  it('lets an unexpected error propagate (a 500, not a 401)', async () => {
    expect((await app(stub(new Error('boom'))).get('/todos').set('Authorization', 'Bearer abc')).status).toBe(500);
  });

  it('names the realm after the first audience unless told otherwise, escaping quotes', async () => {
    expect((await app(stub(GOOD, ['a-api', 'b-api'])).get('/todos')).headers['www-authenticate']).toBe('Bearer realm="a-api"');
    expect((await app(stub(GOOD), { realm: 'to "do"' }).get('/todos')).headers['www-authenticate']).toBe('Bearer realm="to \\"do\\""');
  });

  it('sends configured texts that a header cannot carry as "?" instead of failing with a 500', async () => {
    const res = await app(stub({ ...GOOD, roles: [] }), { realm: 'tâches\r\n', roles: ['RÔLE"\\'] }).get('/todos').set('Authorization', 'Bearer abc');
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="t?ches??", error="insufficient_scope", error_description="requires the role R?LE??"');
  });
});

describe('requireToken with a real verifier and Tollgate', () => {
  let tg: Awaited<ReturnType<typeof startTollgate>>;
  let verifier: Verifier;
  beforeAll(async () => {
    tg = await startTollgate();
    await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
    verifier = createVerifier({ issuer: tg.url, audience: 'todo-api' });
    await verifier.ready();
  });
  afterAll(async () => {
    verifier.close();
    await tg.close();
  });

  it('accepts a Tollgate token with the role and refuses a tampered one', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const api = app(verifier, { roles: ['RETRIEVE_TODOS'] });
    expect((await api.get('/todos').set('Authorization', `Bearer ${access_token}`)).status).toBe(200);
    const res = await api.get('/todos').set('Authorization', `Bearer ${access_token.slice(0, -4)}AAAA`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/);
  });

  it.each([
    ['CR LF', 'ES256\r\nX-Injected: 1'],
    ['NUL', 'ES256\u0000'],
    ['non-ASCII', 'ES256€'],
    ['non-ASCII, long', 'é'.repeat(500)],
  ])('answers a token whose alg holds %s 401 with a fixed description, not 500 (nothing from the token in a header)', async (_what, alg) => {
    const token = await signAsTollgate(tg, { alg }, claims(tg));
    const res = await app(verifier, { roles: ['RETRIEVE_TODOS'] }).get('/todos').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api", error="invalid_token", error_description="the access token algorithm is not accepted"');
    expect(res.headers['x-injected']).toBeUndefined();
  });
});
