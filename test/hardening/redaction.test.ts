// Logs never carry a credential (issue 5 §4): request logs hold method, path, status, duration
// and client_id only, and pino redacts password, client_secret, refresh_token, access_token, token
// and Authorization wherever they are logged as object keys.
import { describe, expect, it } from 'vitest';
import { REDACTED_KEYS, createLogger } from '../../src/logger.js';
import { LogCapture, PASSWORD, basic, createTestApp, passwordGrant, refreshGrant } from '../helpers.js';

describe('log redaction', () => {
  it('keeps every credential out of the logs of grants, revocation, introspection and error answers', async () => {
    const logs = new LogCapture();
    const t = await createTestApp({ logs, config: { server: { trustProxy: true } } });
    try {
      await t.addUser('alice');
      const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
      const rs = await t.addClient('rs', { grants: ['client_credentials'] });
      const secrets: string[] = [PASSWORD, web.client_secret as string, rs.client_secret as string, basic(web), basic(rs), basic(web).slice('Basic '.length)];

      const first = await passwordGrant(t, web, 'alice');
      expect(first.status).toBe(200);
      const second = await refreshGrant(t, web, first.body.refresh_token);
      expect(second.status).toBe(200);
      const cc = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'rs', client_secret: rs.client_secret });
      expect(cc.status).toBe(200);
      secrets.push(first.body.refresh_token, first.body.access_token, second.body.refresh_token, second.body.access_token, cc.body.access_token);

      expect((await t.request.post('/introspect').set('Authorization', basic(rs)).type('form').send({ token: second.body.access_token })).body.active).toBe(true);
      expect((await t.request.post('/introspect').set('Authorization', basic(rs)).type('form').send({ token: second.body.refresh_token })).body.active).toBe(true);
      expect((await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: second.body.access_token })).status).toBe(200);
      expect((await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: second.body.refresh_token })).status).toBe(200);

      // error paths: a replayed refresh token, a wrong password, a wrong secret, a token in the URL
      const wrongPassword = 'a wrong password that must not be logged';
      const wrongSecret = `${(web.client_secret as string).slice(0, -1)}x`;
      secrets.push(wrongPassword, wrongSecret);
      expect((await refreshGrant(t, web, first.body.refresh_token)).status).toBe(400);
      expect((await passwordGrant(t, web, 'alice', wrongPassword)).status).toBe(400);
      expect((await t.request.post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'web', client_secret: wrongSecret })).status).toBe(401);
      expect((await t.request.get(`/deny-list?access_token=${cc.body.access_token}`).set('Authorization', basic(rs))).status).toBe(400);
      expect((await t.request.post(`/introspect?token=${first.body.refresh_token}`).set('Authorization', basic(rs)).type('form').send('token=x')).status).toBe(400);
      expect((await t.request.post('/token').set('Authorization', `Bearer ${cc.body.access_token}`).type('form').send({ grant_type: 'client_credentials' })).status).toBe(401);

      // the capture works: one line per request, with the path and the status
      const lines = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const requests = lines.filter((l) => l.msg === 'request');
      expect(requests).toHaveLength(13);
      expect(requests).toContainEqual(expect.objectContaining({ method: 'POST', path: '/token', status: 400 }));
      expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', path: '/deny-list', status: 400 }));
      expect(lines.some((l) => Number(l.level) >= 50)).toBe(false);

      for (const secret of secrets) expect(logs.text, `a log line holds ${secret.slice(0, 12)}…`).not.toContain(secret);
      // nor a recognisable piece of one: the signature of a JWT, the body of a tgr_/tgs_ secret
      for (const secret of secrets.filter((s) => /^tg[rs]_/.test(s))) expect(logs.text).not.toContain(secret.slice(4, 30));
      for (const jwt of secrets.filter((s) => s.split('.').length === 3)) expect(logs.text).not.toContain(jwt.split('.')[2]);
      expect(logs.text).not.toMatch(/tg[rs]_[A-Za-z0-9_-]{20}/);
      expect(logs.text).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
      expect(logs.text).not.toMatch(/\?(access_|refresh_)?token=/);
    } finally {
      await t.close();
    }
  });

  describe('pino redaction of credentials logged as objects', () => {
    function logOnce(obj: Record<string, unknown>): { line: string; parsed: Record<string, any> } {
      const capture = new LogCapture();
      createLogger('info', capture).info(obj, 'event');
      const line = capture.lines[0] ?? '';
      return { line, parsed: JSON.parse(line) as Record<string, any> };
    }

    it.each(['password', 'client_secret', 'refresh_token', 'access_token', 'token', 'authorization', 'Authorization', 'secret'])('redacts %s at the top level and nested', (key) => {
      const value = `VALUE-OF-${key}-9f2c`;
      const { line, parsed } = logOnce({ [key]: value, body: { [key]: value }, req: { headers: { [key]: value } }, a: { b: { [key]: value } } });
      expect(line).not.toContain(value);
      expect(parsed[key]).toBe('[redacted]');
      expect(parsed.body[key]).toBe('[redacted]');
      expect(parsed.req.headers[key]).toBe('[redacted]');
      expect(parsed.a.b[key]).toBe('[redacted]');
    });

    it('names every key the issue lists', () => {
      for (const key of ['password', 'client_secret', 'refresh_token', 'access_token', 'token', 'authorization']) expect(REDACTED_KEYS).toContain(key);
    });

    it('leaves other fields alone', () => {
      const { parsed } = logOnce({ client_id: 'web', path: '/token', status: 200, username: 'alice' });
      expect(parsed).toMatchObject({ client_id: 'web', path: '/token', status: 200, username: 'alice', msg: 'event' });
    });

    it('does not throw on values that are not plain strings', () => {
      const { line } = logOnce({ token: { nested: 'tgr_object-valued' }, password: ['a', 'b'], authorization: null });
      expect(line).not.toContain('tgr_object-valued');
    });
  });
});
