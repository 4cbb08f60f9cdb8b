// Error descriptions (RFC 6749 §5.2): one fixed public text per error code, so an answer never
// tells a guesser that an account exists or is disabled, or a thief whose token it holds; what
// went wrong (the private detail) goes to the request log line only.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidGrant } from '../../src/oauth/errors.js';
import { LogCapture, type TestApp, basic, createTestApp, passwordGrant, refreshGrant } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };
type Line = { msg: string; path: string; status: number; error?: string; detail?: string };

const INVALID_GRANT = { error: 'invalid_grant', error_description: new InvalidGrant('').description };

describe('error descriptions', () => {
  let t: TestApp;
  let logs: LogCapture;
  let web: Creds;
  let other: Creds;
  let sub: string;

  beforeEach(async () => {
    logs = new LogCapture();
    t = await createTestApp({ logs });
    sub = await t.addUser('alice');
    await t.addUser('bob');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    other = await t.addClient('other', { grants: ['password', 'refresh_token'] });
  });
  afterEach(() => t.close());

  const signIn = async (username = 'alice') => {
    const res = await passwordGrant(t, web, username);
    expect(res.status).toBe(200);
    return res.body.refresh_token as string;
  };
  const setEnabled = (enabled: 0 | 1) => t.store.db.updateTable('users').set({ enabled }).where('id', '=', sub).execute();
  const requestLines = () => logs.lines.map((l) => JSON.parse(l) as Line).filter((l) => l.msg === 'request');

  it("answers a disabled user's refresh and another client's refresh token with the same fixed invalid_grant description (RFC 6749 §5.2)", async () => {
    const disabledUsers = await signIn('alice');
    const anotherClients = await signIn('bob');
    // disabled in the store itself: the family stays live, so only the grant's user check refuses it
    await setEnabled(0);

    const disabled = await refreshGrant(t, web, disabledUsers);
    const wrongClient = await refreshGrant(t, other, anotherClients);
    expect(disabled.status).toBe(400);
    expect(wrongClient.status).toBe(400);
    expect(disabled.body).toEqual(INVALID_GRANT);
    expect(wrongClient.text).toBe(disabled.text);
  });

  it('gives every other refusal of a grant the same description: unknown, replayed and malformed refresh tokens, wrong passwords, unknown and disabled users', async () => {
    const spent = await signIn();
    expect((await refreshGrant(t, web, spent)).status).toBe(200);
    const answers = [
      await refreshGrant(t, web, spent), // a replay: the family is revoked
      await refreshGrant(t, web, spent), // now revoked
      await refreshGrant(t, web, `tgr_${'A'.repeat(43)}`),
      await passwordGrant(t, web, 'alice', 'not the password'),
      await passwordGrant(t, web, 'nobody'),
    ];
    await setEnabled(0);
    answers.push(await passwordGrant(t, web, 'alice'));
    for (const res of answers) {
      expect(res.status).toBe(400);
      expect(res.body).toEqual(INVALID_GRANT);
    }
  });

  it('writes the private detail to the request log line, and not to the answer', async () => {
    const disabledUsers = await signIn('alice');
    const anotherClients = await signIn('bob');
    await setEnabled(0);
    logs.lines.length = 0;

    const disabled = await refreshGrant(t, web, disabledUsers);
    const wrongClient = await refreshGrant(t, other, anotherClients);
    expect(disabled.text).not.toContain('disabled');
    expect(wrongClient.text).not.toContain('client');

    const [disabledLine, wrongClientLine] = requestLines();
    expect(disabledLine).toMatchObject({ path: '/token', status: 400, error: 'invalid_grant', detail: 'the user is disabled' });
    expect(wrongClientLine).toMatchObject({ path: '/token', status: 400, error: 'invalid_grant', detail: 'the refresh token was not issued to this client' });
    // the detail names what went wrong, never the token itself
    expect(logs.text).not.toContain(disabledUsers);
    expect(logs.text).not.toContain(anotherClients);
  });

  it('tells a client that failed to authenticate only that it failed; the reason goes to the log (RFC 6749 §5.2 invalid_client)', async () => {
    const spa = await t.addClient('spa', { public: true, grants: ['password'] });
    logs.lines.length = 0;
    const publicAtIntrospection = await t.request.post('/introspect').type('form').send({ client_id: spa.client_id, token: 'x' });
    const wrongSecret = await t.request.post('/token').set('Authorization', basic({ client_id: 'web', client_secret: 'tgs_wrong' })).type('form').send({ grant_type: 'password' });
    const unknownClient = await t.request.post('/token').set('Authorization', basic({ client_id: 'ghost', client_secret: 'tgs_wrong' })).type('form').send({ grant_type: 'password' });
    for (const res of [publicAtIntrospection, wrongSecret, unknownClient]) {
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
    expect(requestLines().map((l) => l.detail)).toEqual(['this endpoint needs a confidential client', 'client authentication failed', 'client authentication failed']);
  });

  it('still tells the client what is wrong with its own request (invalid_request, unsupported_grant_type)', async () => {
    const missing = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'password', username: 'alice' });
    expect(missing.body).toEqual({ error: 'invalid_request', error_description: 'the password parameter is required' });
    const unsupported = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'implicit' });
    expect(unsupported.body).toEqual({ error: 'unsupported_grant_type', error_description: 'grant_type implicit is not supported' });
  });

  it('logs only the code of an unexpected failure on the request line: its message stays in the error log', async () => {
    const cc = await t.addClient('rs', { grants: ['client_credentials'] });
    vi.spyOn(t.app.services.denyList, 'renderedPage').mockRejectedValueOnce(new Error('the store went away'));
    logs.lines.length = 0;
    const res = await t.request.get('/deny-list').set('Authorization', basic(cc));
    expect(res.status).toBe(500);
    const line = requestLines()[0];
    expect(line).toMatchObject({ path: '/deny-list', status: 500, error: 'server_error' });
    expect(line).not.toHaveProperty('detail');
  });
});
