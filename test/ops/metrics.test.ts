// GET /metrics: Prometheus text from a registry of the app's own, counters the protocol layer
// reports, gauges read at scrape time, and labels that never carry a token, username or secret.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock, PASSWORD, type TestApp, basic, createTestApp, listen, passwordGrant, refreshGrant } from '../helpers.js';
import { subscribe, waitFor } from '../fleet/fleet.js';

/** The value of one sample, e.g. value(text, 'tollgate_revocations_total', { token_type: 'access_token' }). */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

describe('GET /metrics', () => {
  let t: TestApp;
  let clock: FakeClock;
  let web: { client_id: string; client_secret?: string };
  beforeEach(async () => {
    clock = new FakeClock();
    t = await createTestApp({ clock });
    await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
    web = await t.addClient('web', { grants: ['password', 'refresh_token', 'client_credentials'] });
  });
  afterEach(() => t.close());
  const scrape = async () => {
    const res = await t.request.get('/metrics');
    expect(res.status).toBe(200);
    return res.text;
  };

  it('answers in the Prometheus text format, never cached', async () => {
    const res = await t.request.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('exposes every metric the operations guide names', async () => {
    const text = await scrape();
    for (const name of [
      'tollgate_http_requests_total',
      'tollgate_http_request_duration_seconds',
      'tollgate_tokens_issued_total',
      'tollgate_refresh_reuse_detected_total',
      'tollgate_refresh_retries_total',
      'tollgate_revocations_total',
      'tollgate_deny_list_entries',
      'tollgate_sse_subscribers',
      'tollgate_password_hash_queue_depth',
      'tollgate_password_hash_active',
      'tollgate_password_hash_wait_seconds_total',
      'tollgate_signing_key_loaded',
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
    expect(value(text, 'tollgate_signing_key_loaded')).toBe(1);
  });

  it('counts a revocation by token type, and the deny-list entry it adds', async () => {
    const before = await scrape();
    expect(value(before, 'tollgate_revocations_total', { token_type: 'access_token' })).toBe(0);
    expect(value(before, 'tollgate_deny_list_entries')).toBe(0);
    const { body } = await passwordGrant(t, web, 'alice');
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: body.access_token }).expect(200);
    let text = await scrape();
    expect(value(text, 'tollgate_revocations_total', { token_type: 'access_token' })).toBe(1);
    expect(value(text, 'tollgate_revocations_total', { token_type: 'refresh_token' })).toBe(0);
    expect(value(text, 'tollgate_deny_list_entries')).toBe(1);
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: body.refresh_token }).expect(200);
    text = await scrape();
    expect(value(text, 'tollgate_revocations_total', { token_type: 'refresh_token' })).toBe(1);
    expect(value(text, 'tollgate_deny_list_entries')).toBe(2);
  });

  it('counts a revocation of an unknown token as nothing (RFC 7009 §2.2 still answers 200)', async () => {
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: 'not-a-token' }).expect(200);
    const text = await scrape();
    expect(value(text, 'tollgate_revocations_total', { token_type: 'access_token' })).toBe(0);
    expect(value(text, 'tollgate_revocations_total', { token_type: 'refresh_token' })).toBe(0);
  });

  it('counts tokens issued by grant type, and refresh reuse detections', async () => {
    const first = await passwordGrant(t, web, 'alice');
    const second = await refreshGrant(t, web, first.body.refresh_token);
    expect(second.status).toBe(200);
    await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'client_credentials' }).expect(200);
    clock.advance(60);
    expect((await refreshGrant(t, web, first.body.refresh_token)).status).toBe(400);
    const text = await scrape();
    expect(value(text, 'tollgate_tokens_issued_total', { grant: 'password' })).toBe(1);
    expect(value(text, 'tollgate_tokens_issued_total', { grant: 'refresh_token' })).toBe(1);
    expect(value(text, 'tollgate_tokens_issued_total', { grant: 'client_credentials' })).toBe(1);
    expect(value(text, 'tollgate_refresh_reuse_detected_total')).toBe(1);
    expect(value(text, 'tollgate_refresh_retries_total')).toBe(0);
  });

  it('counts requests and their latency by the route template and status, not the raw URL', async () => {
    await passwordGrant(t, web, 'alice').expect(200);
    await passwordGrant(t, web, 'alice', 'wrong password').expect(400);
    // a cursor past the head: 400, counted under the route, the cursor itself nowhere
    await t.request.get('/deny-list?after=12345').set('Authorization', basic(web)).expect(400);
    await t.request.get('/no/such/path/alice').expect(404);
    await t.request.get('/token').expect(405);
    const text = await scrape();
    expect(value(text, 'tollgate_http_requests_total', { method: 'POST', route: '/token', status: '200' })).toBe(1);
    expect(value(text, 'tollgate_http_requests_total', { method: 'POST', route: '/token', status: '400' })).toBe(1);
    expect(value(text, 'tollgate_http_requests_total', { method: 'GET', route: '/deny-list', status: '400' })).toBe(1);
    expect(value(text, 'tollgate_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(value(text, 'tollgate_http_request_duration_seconds_count', { method: 'POST', route: '/token', status: '200' })).toBe(1);
    expect(text).not.toContain('12345');
    expect(text).not.toContain('/no/such/path');
  });

  it('puts no token, username, client secret or password in any label', async () => {
    const { body } = await passwordGrant(t, web, 'alice');
    await refreshGrant(t, web, body.refresh_token).expect(200);
    await passwordGrant(t, web, 'mallory', 'not the password').expect(400);
    await t.request.post('/introspect').set('Authorization', basic(web)).type('form').send({ token: body.access_token }).expect(200);
    const text = await scrape();
    for (const secret of [body.access_token, body.refresh_token, web.client_secret!, PASSWORD, 'not the password', 'alice', 'mallory', body.access_token.split('.')[1]!]) {
      expect(text).not.toContain(secret);
    }
    const labels = [...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(labels)).toEqual(new Set(['method', 'route', 'status', 'le', 'grant', 'token_type', 'limit']));
  });

  it('reports open SSE streams and the password-hash queue', async () => {
    const server = await listen(t.app);
    try {
      const stream = await subscribe(server.url, web);
      await waitFor('the subscriber gauge', 2000, async () => value(await scrape(), 'tollgate_sse_subscribers') === 1);
      await stream.close();
      await waitFor('the subscriber gauge back to 0', 2000, async () => value(await scrape(), 'tollgate_sse_subscribers') === 0);
    } finally {
      await server.close();
    }
    const text = await scrape();
    expect(value(text, 'tollgate_password_hash_queue_depth')).toBe(0);
    expect(value(text, 'tollgate_password_hash_active')).toBe(0);
  });

  it('keeps each app to its own registry (many apps in one process)', async () => {
    const other = await createTestApp();
    try {
      await passwordGrant(t, web, 'alice').expect(200);
      const mine = await scrape();
      const theirs = (await other.request.get('/metrics')).text;
      expect(value(mine, 'tollgate_tokens_issued_total', { grant: 'password' })).toBe(1);
      expect(value(theirs, 'tollgate_tokens_issued_total', { grant: 'password' })).toBe(0);
    } finally {
      await other.close();
    }
  });
});
