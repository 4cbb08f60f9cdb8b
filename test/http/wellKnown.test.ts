// GET /.well-known/jwks.json (RFC 7517), GET /.well-known/oauth-authorization-server (RFC 8414), GET /healthz.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, createTestApp } from '../helpers.js';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe('well-known endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ config: { keys: { jwksMaxAgeSeconds: 120 } } });
  });
  afterAll(() => t.close());

  describe('GET /.well-known/jwks.json', () => {
    it('publishes every published key with public members only, each with kid, use and alg', async () => {
      const res = await t.request.get('/.well-known/jwks.json');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
      const { keys } = JSON.parse(res.text) as { keys: Array<Record<string, unknown>> };
      // the active key and the pre-published next one
      expect(keys).toHaveLength(2);
      for (const key of keys) {
        expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig', alg: 'ES256' });
        expect(key.kid).toBeTypeOf('string');
        expect(key.x).toBeTypeOf('string');
        expect(key.y).toBeTypeOf('string');
        for (const m of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(m);
      }
      expect(new Set(keys.map((k) => k.kid)).size).toBe(2);
    });

    it('publishes exactly the keys the store holds as active or next', async () => {
      const { keys } = JSON.parse((await t.request.get('/.well-known/jwks.json')).text) as { keys: Array<{ kid: string }> };
      const rows = await t.store.db.selectFrom('signing_keys').select(['kid', 'state']).execute();
      expect(keys.map((k) => k.kid).sort()).toEqual(rows.filter((r) => r.state === 'active' || r.state === 'next').map((r) => r.kid).sort());
    });

    it('is cacheable: Cache-Control public with the configured max-age', async () => {
      const res = await t.request.get('/.well-known/jwks.json');
      expect(res.headers['cache-control']).toBe('public, max-age=120');
    });

    it('answers 304 to a matching If-None-Match, and 200 to a stale one', async () => {
      const first = await t.request.get('/.well-known/jwks.json');
      const etag = first.headers.etag;
      expect(etag).toMatch(/^(W\/)?"[^"]+"$/);
      const again = await t.request.get('/.well-known/jwks.json').set('If-None-Match', String(etag));
      expect(again.status).toBe(304);
      expect(again.text ?? '').toBe('');
      expect(again.headers.etag).toBe(etag);
      const stale = await t.request.get('/.well-known/jwks.json').set('If-None-Match', '"something-else"');
      expect(stale.status).toBe(200);
      expect(stale.text).toBe(first.text);
    });

    it('changes its ETag and contents when the keys rotate', async () => {
      const t2 = await createTestApp();
      try {
        const before = await t2.request.get('/.well-known/jwks.json');
        await t2.app.services.keys.rotate('ES256');
        await t2.app.services.keyring.refresh();
        const after = await t2.request.get('/.well-known/jwks.json');
        expect(after.headers.etag).not.toBe(before.headers.etag);
        expect(after.text).not.toBe(before.text);
        expect((await t2.request.get('/.well-known/jwks.json').set('If-None-Match', String(before.headers.etag))).status).toBe(200);
      } finally {
        await t2.close();
      }
    });

    it('answers POST with 405', async () => {
      const res = await t.request.post('/.well-known/jwks.json').type('form').send('a=b');
      expect(res.status).toBe(405);
      expect(res.body.error).toBe('invalid_request');
    });
  });

  describe('GET /.well-known/oauth-authorization-server (RFC 8414)', () => {
    it('describes the server', async () => {
      const res = await t.request.get('/.well-known/oauth-authorization-server');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const m = res.body as Record<string, unknown>;
      expect(m).toMatchObject({
        issuer: 'http://localhost:3000',
        token_endpoint: 'http://localhost:3000/token',
        jwks_uri: 'http://localhost:3000/.well-known/jwks.json',
        revocation_endpoint: 'http://localhost:3000/revoke',
        introspection_endpoint: 'http://localhost:3000/introspect',
      });
      expect(m.grant_types_supported).toEqual(expect.arrayContaining(['password', 'refresh_token', 'client_credentials']));
      expect(m.grant_types_supported).toHaveLength(3);
      expect(m.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
      expect(m.response_types_supported).toBeInstanceOf(Array);
      // RFC 8414 §2: no authorization endpoint, so no implicit/code response types to claim
      expect(m).not.toHaveProperty('authorization_endpoint');
    });

    it('uses the configured issuer, without a trailing slash, as the base of every URL', async () => {
      const t2 = await createTestApp({ config: { issuer: 'https://auth.example.com/tenant/' } });
      try {
        const m = (await t2.request.get('/.well-known/oauth-authorization-server')).body;
        expect(m.issuer).toBe('https://auth.example.com/tenant');
        expect(m.token_endpoint).toBe('https://auth.example.com/tenant/token');
        expect(m.jwks_uri).toBe('https://auth.example.com/tenant/.well-known/jwks.json');
      } finally {
        await t2.close();
      }
    });
  });

  describe('GET /healthz', () => {
    it('answers 200 {"status":"ok"}', async () => {
      const res = await t.request.get('/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
      expect(res.headers['cache-control']).toBe('no-store');
    });
  });

  describe('security headers', () => {
    it('sends nosniff and a restrictive CSP on every response', async () => {
      for (const path of ['/healthz', '/.well-known/jwks.json', '/nowhere']) {
        const res = await t.request.get(path);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      }
    });
  });
});
