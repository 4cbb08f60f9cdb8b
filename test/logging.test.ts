// Structured request logs (pino JSON): method, path, status, duration, client_id, and never a
// password, client secret, refresh token or access token.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCapture, PASSWORD, type TestApp, basic, createTestApp, passwordGrant, refreshGrant } from './helpers.js';

interface RequestLine {
  msg: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  client_id?: string;
  level: number;
  time: number;
}

describe('request logs', () => {
  let t: TestApp;
  let logs: LogCapture;
  let web: { client_id: string; client_secret?: string };

  beforeEach(async () => {
    logs = new LogCapture();
    t = await createTestApp({ logs });
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token', 'client_credentials'] });
  });
  afterEach(() => t.close());

  const requests = () => logs.lines.map((l) => JSON.parse(l) as RequestLine).filter((l) => l.msg === 'request');

  it('writes one JSON line per request with method, path, status, duration and client_id', async () => {
    await passwordGrant(t, web, 'alice');
    const [line] = requests();
    expect(line).toMatchObject({ method: 'POST', path: '/token', status: 200, client_id: 'web' });
    expect(line?.ms).toBeTypeOf('number');
    expect(line?.ms).toBeGreaterThanOrEqual(0);
    expect(line?.time).toBeTypeOf('number');
    expect(line?.level).toBe(30);
  });

  it('logs failures with their status, and the client when it authenticated', async () => {
    await passwordGrant(t, web, 'alice', 'wrong password');
    await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'web', client_secret: 'tgs_wrong' });
    await t.request.get('/nowhere');
    const [wrongPassword, badClient, notFound] = requests();
    expect(wrongPassword).toMatchObject({ method: 'POST', path: '/token', status: 400, client_id: 'web' });
    expect(badClient).toMatchObject({ method: 'POST', path: '/token', status: 401 });
    expect(badClient).not.toHaveProperty('client_id');
    expect(notFound).toMatchObject({ method: 'GET', path: '/nowhere', status: 404 });
  });

  it('never logs the query string', async () => {
    await t.request.get('/healthz?access_token=secret-in-the-url&x=1');
    const [line] = requests();
    expect(line).toMatchObject({ path: '/healthz', status: 400 });
    expect(logs.text).not.toContain('secret-in-the-url');
  });

  it('never logs a password, client secret, refresh token or access token', async () => {
    const signIn = await passwordGrant(t, web, 'alice');
    const refreshed = await refreshGrant(t, web, signIn.body.refresh_token);
    const machine = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'web', client_secret: web.client_secret ?? '' });
    await refreshGrant(t, web, signIn.body.refresh_token); // a replay: logged as a warning-worthy event
    await passwordGrant(t, web, 'alice', 'a wrong password that must not leak');
    await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: refreshed.body.access_token });
    await t.request.post('/introspect').set('Authorization', basic(web)).type('form').send({ token: machine.body.access_token });
    await t.request.post('/token').set('Authorization', `Basic ${Buffer.from(`web:${PASSWORD}`).toString('base64')}`).type('form').send({ grant_type: 'client_credentials' });

    expect(requests().length).toBeGreaterThanOrEqual(8);
    const secrets = [
      PASSWORD,
      'a wrong password that must not leak',
      web.client_secret ?? '',
      signIn.body.refresh_token,
      refreshed.body.refresh_token,
      signIn.body.access_token,
      refreshed.body.access_token,
      machine.body.access_token,
    ];
    for (const s of secrets) {
      expect(s.length).toBeGreaterThan(10);
      expect(logs.text).not.toContain(s);
    }
    // nor any JWT or opaque token at all
    expect(logs.text).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
    expect(logs.text).not.toMatch(/tg[rs]_[A-Za-z0-9_-]{20,}/);
    expect(logs.text).not.toMatch(/authorization/i);
  });

  it('redacts secrets that reach a log call by accident', async () => {
    t.app.services.logger.info({ password: 'p4ssw0rd!', client_secret: 'tgs_leak', nested: { refresh_token: 'tgr_leak', access_token: 'eyJleak' } }, 'oops');
    expect(logs.text).toContain('oops');
    for (const s of ['p4ssw0rd!', 'tgs_leak', 'tgr_leak', 'eyJleak']) expect(logs.text).not.toContain(s);
  });
});
