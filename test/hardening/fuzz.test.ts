// Property-based fuzzing (issue 5, "Tests that must exist"): random form bodies, headers and tokens
// at every endpoint. Whatever arrives, the answer is never a 5xx, and every 4xx is a well-formed
// RFC 6749 §5.2 error object: {"error", "error_description"?} in the §5.2 character set.
import fc from 'fast-check';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, type TestApp, basic, createTestApp, listen } from '../helpers.js';

const RUNS = 150;
// RFC 6749 §5.2: error and error_description use %x20-21 / %x23-5B / %x5D-7E only
const ERROR_CHARS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]*$/;

type Res = { status: number; headers: Record<string, string>; body: unknown; text: string };

function expectWellFormed(res: Res, method = 'GET'): void {
  expect(res.status, res.text).toBeLessThan(500);
  if (res.status < 400 || method === 'HEAD') return;
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toContain('no-store');
  const body = res.body as Record<string, unknown>;
  expect(typeof body).toBe('object');
  expect(typeof body.error).toBe('string');
  expect(body.error).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/);
  if ('error_description' in body) {
    expect(typeof body.error_description).toBe('string');
    expect(body.error_description).toMatch(ERROR_CHARS);
  }
  for (const key of Object.keys(body)) expect(['error', 'error_description']).toContain(key);
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('fuzzing every endpoint', () => {
  let t: TestApp;
  let request: ReturnType<typeof supertest>;
  let close: () => Promise<void>;
  const pool = { web: '', rs: '', webSecret: '', rsSecret: '', refresh: [] as string[], access: [] as string[] };

  beforeAll(async () => {
    t = await createTestApp({ config: { throttle: { windowSeconds: 60, maxFailuresPerUsername: 1000, maxFailuresPerIp: 100_000 } } });
    await t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read todos:write' });
    const rs = await t.addClient('rs', { grants: ['client_credentials'] });
    pool.web = basic(web);
    pool.rs = basic(rs);
    pool.webSecret = web.client_secret as string;
    pool.rsSecret = rs.client_secret as string;
    const server = await listen(t.app);
    close = server.close;
    request = supertest(server.url);
    for (let i = 0; i < 3; i++) {
      const res = await request.post('/token').set('Authorization', pool.web).type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD });
      pool.refresh.push(res.body.refresh_token);
      pool.access.push(res.body.access_token);
    }
  });
  afterAll(async () => {
    await close();
    await t.close();
  });

  // --- arbitraries ---------------------------------------------------------------------------
  /** Visible Latin-1 text: what an HTTP header value may carry. */
  const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 120 });
  const unicode = fc.string({ unit: 'binary', maxLength: 60 });
  const huge = fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n));
  const jwtish = fc
    .tuple(fc.oneof(fc.json(), fc.constant('{"alg":"none","typ":"at+jwt"}'), fc.constant('{"alg":"HS256","kid":"x"}')), fc.json(), fc.string({ maxLength: 90 }))
    .map(([h, p, s]) => `${b64(h)}.${b64(p)}.${b64(s)}`);
  const mutated = (tokens: () => string[]) =>
    fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...'AZaz09-_.=%+/')).map(([which, at, c]) => {
      const list = tokens();
      const token = list[which % list.length] ?? '';
      const i = at % Math.max(1, token.length);
      return token.slice(0, i) + c + token.slice(i + 1);
    });
  const token = fc.oneof(
    fc.constantFrom('', 'null', 'undefined', '[]', '{}', 'tgr_', 'tgs_', 'a.b.c', '..', 'eyJ.eyJ.', 'Bearer x'),
    fc.nat({ max: 2 }).map((i) => pool.refresh[i] as string),
    fc.nat({ max: 2 }).map((i) => pool.access[i] as string),
    fc.string({ maxLength: 80 }).map((s) => `tgr_${s}`),
    mutated(() => pool.refresh),
    mutated(() => pool.access),
    jwtish,
    unicode,
    huge,
  );
  // mostly names the endpoint does not know (ignored, RFC 6749 §3.2); known ones make duplicates
  const name = fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('grant_type', 'username', 'password', 'client_id', 'client_secret', 'refresh_token', 'scope', 'token', 'token_type_hint', 'audience', 'resource', '') },
    { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: unicode },
  );
  const value = fc.oneof(
    fc.constantFrom('password', 'refresh_token', 'client_credentials', 'authorization_code', 'access_token', 'alice', PASSWORD, 'web', 'rs', 'todos:read', 'todos:read todos:write', 'openid'),
    fc.constant(null).map(() => pool.webSecret),
    token,
    unicode,
  );
  const pairs = fc.oneof({ weight: 4, arbitrary: fc.array(fc.tuple(name, value), { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(fc.tuple(name, value), { maxLength: 40 }) });
  /** Plausible parameters (so requests get past parsing and client authentication) plus random ones. */
  const form = (plausible: fc.Arbitrary<Record<string, string>>) =>
    fc.tuple(plausible, pairs, fc.boolean()).map(([known, extra, reverse]) => {
      const all: Array<[string, string]> = [...Object.entries(known), ...extra];
      if (reverse) all.reverse();
      return new URLSearchParams(all).toString();
    });
  const rawBody = fc.oneof(
    fc.string({ unit: fc.constantFrom(...'ab=&%2G+;\u00e9\u{1F600}xyz0'), maxLength: 200 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    huge,
  );
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8', 'APPLICATION/X-WWW-FORM-URLENCODED') },
    { weight: 2, arbitrary: fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded-evil', ';') },
    { weight: 1, arbitrary: headerText },
  );
  const authorization = fc.oneof(
    fc.constant(undefined),
    { weight: 4, arbitrary: fc.constant(null).map(() => pool.web) },
    { weight: 4, arbitrary: fc.constant(null).map(() => pool.rs) },
    fc.tuple(fc.constantFrom('web', 'rs', '', 'nobody', 'web:x'), fc.oneof(unicode, fc.constant(null).map(() => pool.rsSecret), fc.string({ maxLength: 60 }).map((s) => `tgs_${s}`))).map(([id, secret]) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`),
    unicode.map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
    headerText.map((s) => `Basic ${s}`),
    token.filter((s) => s.length < 4000 && /^[\x20-\x7e]*$/.test(s)).map((s) => `Bearer ${s}`),
    headerText,
  );
  const extraHeaders = fc.record(
    {
      'if-none-match': headerText,
      'last-event-id': headerText,
      'x-forwarded-for': headerText,
      accept: headerText,
      'content-encoding': fc.constantFrom('gzip', 'identity', 'br', 'x'),
    },
    { requiredKeys: [] },
  );
  /** A query string without credentials in it (those are refused: limits.test.ts). */
  const query = fc.oneof(
    fc.constant(''),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom('after', 'x', 'client_id', 'cursor'), fc.string({ maxLength: 10 })), fc.oneof(fc.nat().map(String), unicode, fc.constantFrom('-1', '1e3', '0x10', '99999999999999999999'))), { maxLength: 4 }).map((p) => new URLSearchParams(p).toString()),
    fc.string({ unit: fc.constantFrom(...'after=&%0Gz[]1.-'), maxLength: 30 }),
  );

  function send(method: string, path: string, opts: { body?: string | Buffer; type?: string; auth?: string | undefined; headers?: Record<string, string> }) {
    let req = request[method.toLowerCase() as 'get'](path);
    if (opts.auth !== undefined) req = req.set('Authorization', opts.auth);
    for (const [k, v] of Object.entries(opts.headers ?? {})) req = req.set(k, v);
    if (opts.type !== undefined) req = req.set('Content-Type', opts.type);
    return opts.body === undefined ? req : req.send(opts.body);
  }

  const grantForm = form(
    fc.record(
      {
        grant_type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('password', 'refresh_token', 'client_credentials') }, { weight: 1, arbitrary: value }),
        username: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('alice', 'ALICE', 'bob') }, { weight: 1, arbitrary: unicode }),
        password: fc.oneof(fc.constant(PASSWORD), value),
        refresh_token: token,
        scope: fc.oneof(fc.constantFrom('todos:read', 'todos:read todos:write', 'admin', ' ', 'todos:read  todos:read'), unicode),
      },
      { requiredKeys: ['grant_type', 'username', 'password'] },
    ),
  );
  const tokenForm = form(fc.record({ token, token_type_hint: fc.oneof(fc.constantFrom('access_token', 'refresh_token', ''), unicode) }, { requiredKeys: ['token'] }));

  // --- properties ----------------------------------------------------------------------------
  it('POST /token: random forms, content types and client credentials', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: grantForm }, { weight: 1, arbitrary: rawBody }), contentType, authorization, extraHeaders, async (body, type, auth, headers) => {
        expectWellFormed(await send('POST', '/token', { body, type, auth, headers }), 'POST');
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /revoke: random tokens, hints and client credentials', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: tokenForm }, { weight: 1, arbitrary: rawBody }), contentType, authorization, async (body, type, auth) => {
        expectWellFormed(await send('POST', '/revoke', { body, type, auth }), 'POST');
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /introspect: random tokens, and an active flag on every 200', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: tokenForm }, { weight: 1, arbitrary: rawBody }), contentType, authorization, async (body, type, auth) => {
        const res = await send('POST', '/introspect', { body, type, auth });
        expectWellFormed(res, 'POST');
        if (res.status === 200) expect(typeof res.body.active).toBe('boolean');
        if (res.status === 200 && res.body.active === false) expect(res.body).toEqual({ active: false });
      }),
      { numRuns: RUNS },
    );
  });

  it('GET /deny-list: random cursors, queries and headers', async () => {
    await fc.assert(
      fc.asyncProperty(query, authorization, extraHeaders, async (q, auth, headers) => {
        const res = await send('GET', `/deny-list${q ? `?${q}` : ''}`, { auth, headers });
        expectWellFormed(res);
        if (res.status === 200) expect(res.body).toMatchObject({ cursor: expect.any(String), entries: expect.any(Array) });
      }),
      { numRuns: RUNS },
    );
  });

  it('GET /.well-known/*: random paths, queries and conditional headers', async () => {
    const segment = fc.oneof(
      fc.constantFrom('jwks.json', 'oauth-authorization-server', 'openid-configuration', '', '..', '%2e%2e', 'jwks.json%00', '%ZZ', '%E0%A4%A'),
      unicode.map(encodeURIComponent),
      fc.string({ unit: fc.constantFrom(...'abc.-_~%2F0'), maxLength: 20 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 3 }), query, extraHeaders, fc.constantFrom('GET', 'HEAD'), async (segments, q, headers, method) => {
        const res = await send(method, `/.well-known/${segments.join('/')}${q ? `?${q}` : ''}`, { headers });
        expectWellFormed(res, method);
      }),
      { numRuns: RUNS },
    );
  });

  it('any method on any endpoint', async () => {
    const paths = ['/token', '/revoke', '/introspect', '/deny-list', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/healthz', '/readyz', '/metrics', '/', '/token/', '/TOKEN', '//token'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), fc.constantFrom(...paths), fc.option(rawBody, { nil: undefined }), contentType, authorization, async (method, path, body, type, auth) => {
        expectWellFormed(await send(method, path, { body: method === 'GET' || method === 'HEAD' ? undefined : body, type, auth }), method);
      }),
      { numRuns: RUNS },
    );
  });
});
