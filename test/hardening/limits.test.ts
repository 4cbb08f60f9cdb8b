// Resource limits and transport hygiene (issue 5 §2, §4, §5): small bodies, few parameters, no
// credentials in URLs, security headers on every response, and HTTP server timeouts from config.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyServerLimits } from '../../src/app.js';
import { ConfigError } from '../../src/config.js';
import { type TestApp, basic, createTestApp, listen, testConfig } from '../helpers.js';

type Client = { client_id: string; client_secret?: string };

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
};

function expectSecurityHeaders(headers: Record<string, string>) {
  expect(headers).toMatchObject(SECURITY_HEADERS);
}

function expectInvalidRequest(res: { status: number; body: Record<string, unknown>; headers: Record<string, string> }, status = 400) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
}

describe('request limits', () => {
  let t: TestApp;
  let cc: Client;
  const cleanup: Array<() => Promise<void>> = [];

  async function setup(config: Record<string, unknown> = {}) {
    t = await createTestApp({ config });
    cleanup.push(() => t.close());
    cc = await t.addClient('svc', { grants: ['client_credentials'] });
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of cleanup.splice(0)) await close();
  });

  /** A client_credentials body of exactly `bytes` bytes (unknown parameters are ignored, RFC 6749 §3.2). */
  function bodyOf(bytes: number): string {
    const head = 'grant_type=client_credentials&pad=';
    return head + 'x'.repeat(bytes - head.length);
  }

  describe('body size', () => {
    it('answers 413 with a JSON error for a body over bodyLimitBytes', async () => {
      await setup();
      const res = await t.request.post('/token').set('Authorization', basic(cc)).type('form').send(bodyOf(t.config.server.bodyLimitBytes + 1));
      expectInvalidRequest(res, 413);
      expect(res.headers['cache-control']).toContain('no-store');
    });

    it('accepts a body of exactly bodyLimitBytes', async () => {
      await setup();
      const res = await t.request.post('/token').set('Authorization', basic(cc)).type('form').send(bodyOf(t.config.server.bodyLimitBytes));
      expect(res.status).toBe(200);
    });

    it('answers 413 to an oversized chunked body that declares no Content-Length', async () => {
      await setup({ server: { bodyLimitBytes: 1024 } });
      const server = await listen(t.app);
      cleanup.unshift(() => server.close());
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${server.url}/token`, { method: 'POST', headers: { authorization: basic(cc), 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.write('grant_type=client_credentials&pad=');
        for (let i = 0; i < 8; i++) req.write('x'.repeat(512));
        req.end();
      });
      expect(status).toBe(413);
      expect(JSON.parse(body)).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
    });
  });

  describe('parameters', () => {
    const params = (n: number) => ['grant_type=client_credentials', ...Array.from({ length: n - 1 }, (_, i) => `p${i}=v`)].join('&');

    it('answers 400 invalid_request to more than maxParameters parameters', async () => {
      await setup();
      const res = await t.request.post('/token').set('Authorization', basic(cc)).type('form').send(params(t.config.server.maxParameters + 1));
      expectInvalidRequest(res);
      expect(res.body.error_description).toMatch(/too many parameters/);
    });

    it('accepts exactly maxParameters parameters', async () => {
      await setup();
      const res = await t.request.post('/token').set('Authorization', basic(cc)).type('form').send(params(t.config.server.maxParameters));
      expect(res.status).toBe(200);
    });

    it('answers 400 invalid_request to a repeated parameter (RFC 6749 §3.2)', async () => {
      await setup();
      const res = await t.request.post('/token').set('Authorization', basic(cc)).type('form').send('grant_type=client_credentials&scope=a&scope=b');
      expectInvalidRequest(res);
    });
  });

  describe('credentials in the query string (RFC 6750 §2.3, RFC 9700 §4.3.2)', () => {
    const NAMES = ['token', 'access_token', 'refresh_token', 'client_secret', 'password'];
    // each request is otherwise valid: the query string alone is why it is refused
    const endpoints: Array<{ name: string; send: (t: TestApp, query: string) => Promise<any> }> = [
      { name: 'POST /token', send: (t, q) => t.request.post(`/token?${q}`).set('Authorization', basic(cc)).type('form').send('grant_type=client_credentials') },
      { name: 'POST /revoke', send: (t, q) => t.request.post(`/revoke?${q}`).set('Authorization', basic(cc)).type('form').send('token=x') },
      { name: 'POST /introspect', send: (t, q) => t.request.post(`/introspect?${q}`).set('Authorization', basic(cc)).type('form').send('token=x') },
      { name: 'GET /deny-list', send: (t, q) => t.request.get(`/deny-list?${q}`).set('Authorization', basic(cc)) },
      { name: 'GET /deny-list/events', send: (t, q) => t.request.get(`/deny-list/events?${q}`).set('Authorization', basic(cc)) },
      { name: 'GET /.well-known/jwks.json', send: (t, q) => t.request.get(`/.well-known/jwks.json?${q}`) },
      { name: 'GET /.well-known/oauth-authorization-server', send: (t, q) => t.request.get(`/.well-known/oauth-authorization-server?${q}`) },
      { name: 'GET /healthz', send: (t, q) => t.request.get(`/healthz?${q}`) },
      { name: 'GET /readyz', send: (t, q) => t.request.get(`/readyz?${q}`) },
      { name: 'GET /no-such-endpoint', send: (t, q) => t.request.get(`/no-such-endpoint?${q}`) },
    ];

    for (const endpoint of endpoints) {
      it(`refuses ${NAMES.join(', ')} in the URL of ${endpoint.name} with 400 invalid_request`, async () => {
        await setup();
        for (const name of NAMES) {
          const res = await endpoint.send(t, `${name}=tgr_leaked`);
          expectInvalidRequest(res);
          expect(res.body.error_description).toContain(name);
          expectSecurityHeaders(res.headers);
          expect(res.headers['cache-control']).toContain('no-store');
        }
      });
    }

    it('refuses the names however they are spelled: any case, percent-encoded, among other parameters', async () => {
      await setup();
      for (const q of ['Access_Token=x', 'ACCESS_TOKEN=x', '%74oken=x', 'after=0&refresh_token=x', 'client_secret', 'password=']) {
        expectInvalidRequest(await t.request.get(`/deny-list?${q}`).set('Authorization', basic(cc)));
      }
    });

    it('still accepts a query string without credentials', async () => {
      await setup();
      expect((await t.request.get('/deny-list?after=0').set('Authorization', basic(cc))).status).toBe(200);
      expect((await t.request.get('/healthz?probe=1')).status).toBe(200);
    });
  });

  describe('security headers', () => {
    it('are on every response: success, 304, 4xx and 500', async () => {
      await setup({ throttle: { windowSeconds: 60, maxFailuresPerUsername: 1, maxFailuresPerIp: 100 } });
      const web = await t.addClient('web', { grants: ['password'] });
      const jwks = await t.request.get('/.well-known/jwks.json');
      await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'password', username: 'x', password: 'y' });
      vi.spyOn(t.app.services.denyList, 'renderedPage').mockRejectedValueOnce(new Error('the store went away'));

      const answers: Array<[number, any]> = [
        [200, await t.request.get('/healthz')],
        [200, jwks],
        [200, await t.request.get('/.well-known/oauth-authorization-server')],
        [200, await t.request.post('/token').set('Authorization', basic(cc)).type('form').send('grant_type=client_credentials')],
        [304, await t.request.get('/.well-known/jwks.json').set('If-None-Match', jwks.headers.etag as string)],
        [400, await t.request.post('/token').set('Authorization', basic(cc)).type('application/json').send('{}')],
        [401, await t.request.post('/introspect').type('form').send('token=x')],
        [404, await t.request.get('/nowhere')],
        [405, await t.request.delete('/token')],
        [413, await t.request.post('/token').type('form').send('a='.padEnd(20_000, 'x'))],
        [429, await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'password', username: 'x', password: 'y' })],
        [500, await t.request.get('/deny-list').set('Authorization', basic(cc))],
      ];
      for (const [status, res] of answers) {
        expect(res.status).toBe(status);
        expectSecurityHeaders(res.headers);
        // an http:// issuer (loopback) must not pin browsers to HTTPS
        expect(res.headers['strict-transport-security']).toBeUndefined();
      }
      const crash = answers.at(-1)?.[1];
      expect(crash.body).toEqual({ error: 'server_error', error_description: 'the server met an unexpected condition' });
      expect(crash.text).not.toContain('the store went away');
    });

    it('add Strict-Transport-Security when the issuer is https://', async () => {
      await setup({ issuer: 'https://auth.example.com' });
      for (const res of [await t.request.get('/healthz'), await t.request.get('/nowhere')]) {
        expectSecurityHeaders(res.headers);
        expect(res.headers['strict-transport-security']).toMatch(/^max-age=\d+/);
      }
    });
  });
});

describe('HTTP server timeouts', () => {
  it('are set from config.server on the server, the way src/server.ts creates it', async () => {
    const config = testConfig({ server: { headersTimeoutMs: 4321, requestTimeoutMs: 8765, keepAliveTimeoutMs: 1234 } });
    const t = await createTestApp({ config: { server: config.server } });
    const server = http.createServer(t.app.callback());
    try {
      applyServerLimits(server, t.config);
      expect(server.headersTimeout).toBe(4321);
      expect(server.requestTimeout).toBe(8765);
      expect(server.keepAliveTimeout).toBe(1234);
    } finally {
      server.close();
      await t.close();
    }
  });

  it('default to finite values, so a slow client cannot hold a connection forever', () => {
    const { server } = testConfig();
    expect(server.headersTimeoutMs).toBeGreaterThan(0);
    expect(server.requestTimeoutMs).toBeGreaterThanOrEqual(server.headersTimeoutMs);
    expect(server.requestTimeoutMs).toBeLessThanOrEqual(60_000);
  });

  it('cut off a client that never finishes its headers (408)', async () => {
    const t = await createTestApp({ config: { server: { headersTimeoutMs: 200, requestTimeoutMs: 300 } } });
    // node checks the timeouts every connectionsCheckingInterval: short here so the test is quick
    const server = http.createServer({ connectionsCheckingInterval: 20 }, t.app.callback());
    applyServerLimits(server, t.config);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('POST /token HTTP/1.1\r\nHost: localhost\r\nX-Slow: '));
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      server.closeAllConnections();
      server.close();
      await t.close();
    }
  });

  it('are refused by config validation when the headers may take longer than the whole request', () => {
    expect(() => testConfig({ server: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } })).toThrow(ConfigError);
    expect(() => testConfig({ server: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } })).toThrow(/server\.headersTimeoutMs/);
    expect(() => testConfig({ server: { headersTimeoutMs: 0 } })).toThrow(/server\.headersTimeoutMs/);
  });
});
