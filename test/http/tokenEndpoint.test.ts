// POST /token at the HTTP edge: RFC 6749 §5.2 error bodies, strict form bodies, client
// authentication (§2.3.1), and Cache-Control: no-store on every answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, type TestApp, basic, createTestApp } from '../helpers.js';

type Client = { client_id: string; client_secret?: string };

describe('POST /token', () => {
  let t: TestApp;
  let web: Client;

  beforeAll(async () => {
    t = await createTestApp();
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token', 'client_credentials'], scope: 'todos:read' });
  });
  afterAll(() => t.close());

  const post = () => t.request.post('/token');
  const auth = () => post().set('Authorization', basic(web));

  function expectOAuthError(res: { status: number; body: Record<string, unknown>; headers: Record<string, string> }, status: number, error: string): void {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.error).toBe(error);
    expect(typeof res.body.error_description).toBe('string');
    expect(Object.keys(res.body).sort()).toEqual(['error', 'error_description']);
    expect(res.headers['cache-control']).toBe('no-store');
  }

  describe('success', () => {
    it('answers a token with Cache-Control: no-store and Pragma: no-cache', async () => {
      const res = await auth().type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.pragma).toBe('no-cache');
    });

    it('accepts a Content-Type with a charset and any letter case', async () => {
      const res = await auth().set('Content-Type', 'Application/X-WWW-Form-Urlencoded; charset=UTF-8').send('grant_type=client_credentials');
      expect(res.status).toBe(200);
    });

    it('decodes Basic credentials that were form-encoded per RFC 6749 §2.3.1', async () => {
      const odd = await t.addClient('svc:odd.name', { grants: ['client_credentials'] });
      const res = await post().set('Authorization', basic(odd)).type('form').send({ grant_type: 'client_credentials' });
      expect(res.status).toBe(200);
    });

    it('accepts a client_id in the body that matches the Basic credentials', async () => {
      const res = await auth().type('form').send({ grant_type: 'client_credentials', client_id: 'web' });
      expect(res.status).toBe(200);
    });
  });

  describe('request format → invalid_request', () => {
    it('refuses a JSON body', async () => {
      const res = await auth().set('Content-Type', 'application/json').send(JSON.stringify({ grant_type: 'client_credentials' }));
      expectOAuthError(res, 400, 'invalid_request');
    });

    it.each(['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencodedx'])('refuses a %s body', async (type) => {
      const res = await auth().set('Content-Type', type).send('grant_type=client_credentials');
      expectOAuthError(res, 400, 'invalid_request');
    });

    it('refuses a body without a Content-Type', async () => {
      const res = await auth();
      expectOAuthError(res, 400, 'invalid_request');
    });

    it.each(['grant_type', 'scope', 'username', 'password', 'client_id'])('refuses a repeated %s parameter', async (name) => {
      const params = new URLSearchParams({ grant_type: 'password', username: 'alice', password: PASSWORD, scope: 'todos:read' });
      params.append(name, params.get(name) ?? 'web');
      const res = await (name === 'client_id' ? post().type('form').send(`${params}&client_id=web&client_secret=${web.client_secret}`) : auth().type('form').send(params.toString()));
      expectOAuthError(res, 400, 'invalid_request');
      expect(res.body.error_description).toContain(name);
    });

    it('refuses a missing grant_type', async () => {
      const res = await auth().type('form').send({ username: 'alice', password: PASSWORD });
      expectOAuthError(res, 400, 'invalid_request');
      expect(res.body.error_description).toContain('grant_type');
    });

    it('refuses an empty grant_type', async () => {
      expectOAuthError(await auth().type('form').send('grant_type='), 400, 'invalid_request');
    });

    it('refuses too many parameters', async () => {
      const body = Array.from({ length: 40 }, (_, i) => `p${i}=x`).join('&');
      expectOAuthError(await auth().type('form').send(`grant_type=client_credentials&${body}`), 400, 'invalid_request');
    });

    it('refuses a body over the size limit with 413', async () => {
      const res = await auth().type('form').send(`grant_type=client_credentials&pad=${'x'.repeat(20_000)}`);
      expectOAuthError(res, 413, 'invalid_request');
    });

    it.each(['password', 'refresh_token', 'client_secret', 'access_token'])('refuses %s in the query string (RFC 9700 §4.3.2)', async (name) => {
      const res = await t.request.post(`/token?${name}=x`).set('Authorization', basic(web)).type('form').send({ grant_type: 'client_credentials' });
      expectOAuthError(res, 400, 'invalid_request');
    });
  });

  describe('grant_type', () => {
    it.each(['authorization_code', 'implicit', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'PASSWORD'])('answers %s with unsupported_grant_type', async (grantType) => {
      const res = await auth().type('form').send({ grant_type: grantType });
      expectOAuthError(res, 400, 'unsupported_grant_type');
    });
  });

  describe('client authentication → invalid_client', () => {
    it.each([
      ['a Bearer header', 'Bearer abc'],
      ['bad base64', 'Basic !!!'],
      ['no colon', `Basic ${Buffer.from('web').toString('base64')}`],
      ['an empty client id', `Basic ${Buffer.from(':secret').toString('base64')}`],
      ['bad percent-encoding', `Basic ${Buffer.from('web:%zz').toString('base64')}`],
      ['an unknown client', basic({ client_id: 'nobody', client_secret: 'tgs_x' })],
      ['a wrong secret', basic({ client_id: 'web', client_secret: 'tgs_wrong' })],
      ['an empty secret', basic({ client_id: 'web', client_secret: '' })],
    ])('answers Basic with %s with 401 and a Basic challenge', async (_what, header) => {
      const res = await post().set('Authorization', header).type('form').send({ grant_type: 'client_credentials' });
      expectOAuthError(res, 401, 'invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="[^"]+"/);
    });

    it('answers a wrong secret sent with client_secret_post with 401', async () => {
      const res = await post().type('form').send({ grant_type: 'client_credentials', client_id: 'web', client_secret: 'tgs_wrong' });
      expectOAuthError(res, 401, 'invalid_client');
    });

    it('answers a well-formed but wrong secret with 401', async () => {
      const other = await t.addClient('other', { grants: ['client_credentials'] });
      const res = await post().type('form').send({ grant_type: 'client_credentials', client_id: 'web', client_secret: other.client_secret ?? '' });
      expectOAuthError(res, 401, 'invalid_client');
    });

    it('answers a request with no client at all with 401', async () => {
      expectOAuthError(await post().type('form').send({ grant_type: 'client_credentials' }), 401, 'invalid_client');
    });

    it('refuses Basic together with client_secret in the body: one method per request (RFC 6749 §2.3)', async () => {
      const res = await auth().type('form').send({ grant_type: 'client_credentials', client_secret: web.client_secret ?? '' });
      expectOAuthError(res, 400, 'invalid_request');
    });

    it('refuses a body client_id that differs from the Basic one', async () => {
      const res = await auth().type('form').send({ grant_type: 'client_credentials', client_id: 'someone-else' });
      expectOAuthError(res, 400, 'invalid_request');
    });
  });

  describe('no-store and JSON on every error', () => {
    it.each([
      ['invalid_grant', { grant_type: 'password', username: 'alice', password: 'wrong' }, 400],
      ['invalid_scope', { grant_type: 'client_credentials', scope: 'admin' }, 400],
      ['invalid_request', { grant_type: 'refresh_token' }, 400],
      ['unsupported_grant_type', { grant_type: 'device_code' }, 400],
    ] as const)('%s', async (error, body, status) => {
      expectOAuthError(await auth().type('form').send(body), status, error);
    });
  });

  describe('other methods and paths', () => {
    it('answers GET /token with 405 JSON and an Allow header', async () => {
      const res = await t.request.get('/token');
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error).toBe('invalid_request');
      expect(res.headers.allow).toContain('POST');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it.each(['delete', 'put', 'patch'] as const)('answers %s /token with 405 JSON', async (method) => {
      const res = await t.request[method]('/token');
      expectOAuthError(res, 405, 'invalid_request');
      expect(res.headers.allow).toContain('POST');
    });

    it('answers a method the server does not implement with 501 JSON, not 500', async () => {
      const res = await t.request.propfind('/token');
      expectOAuthError(res, 501, 'invalid_request');
    });

    it('answers an unknown path with 404 JSON', async () => {
      const res = await t.request.get('/authorize');
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error).toBe('not_found');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('answers POST to an unknown path with 404 JSON', async () => {
      const res = await t.request.post('/oauth/token').type('form').send({ grant_type: 'client_credentials' });
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('not_found');
    });
  });

  describe('no input produces a 500', () => {
    it.each([
      ['bad percent-encoding in the body', 'grant_type=password&username=%zz&password=%'],
      ['invalid UTF-8', Buffer.from([0x67, 0x72, 0x61, 0x6e, 0x74, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x3d, 0xff, 0xfe])],
      ['a NUL byte', 'grant_type=password&username=al%00ice&password=x'],
      ['an empty body', ''],
      ['only separators', '&&&=&='],
      ['a huge username', `grant_type=password&username=${'a'.repeat(10_000)}&password=x`],
      ['a huge refresh token', `grant_type=refresh_token&refresh_token=tgr_${'a'.repeat(10_000)}`],
      ['a scope with control characters', 'grant_type=client_credentials&scope=%01%7F'],
    ])('%s', async (_what, body) => {
      const res = await auth().set('Content-Type', 'application/x-www-form-urlencoded').send(body);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error).toBeTypeOf('string');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('a Basic header with a very long value', async () => {
      const res = await post().set('Authorization', `Basic ${Buffer.from(`${'a'.repeat(5000)}:${'b'.repeat(5000)}`).toString('base64')}`).type('form').send({ grant_type: 'client_credentials' });
      expectOAuthError(res, 401, 'invalid_client');
    });
  });
});
