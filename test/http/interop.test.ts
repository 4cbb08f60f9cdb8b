// What OAuth client libraries nobody here wrote put on the wire (issue 15 items 5, 7, 8, 9), byte
// for byte, and what RFC 6749 says about it. Each raw request names the library and the call that
// sends it; the bodies are in the order and encoding the library produces.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRepository } from '../../src/store/clients.js';
import { UserRepository } from '../../src/store/users.js';
import { PASSWORD, type TestApp, basic, createTestApp, decodeJwt } from '../helpers.js';

type Credentials = { client_id: string; client_secret?: string };

const FORM = 'application/x-www-form-urlencoded';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
/** PASSWORD as every form encoder here writes it: spaces as `+`. */
const PASSWORD_FORM = PASSWORD.replaceAll(' ', '+');

describe('requests as OAuth client libraries send them', () => {
  let t: TestApp;
  let web: Credentials;
  let svc: Credentials;
  let aliceId: string;

  beforeAll(async () => {
    t = await createTestApp();
    aliceId = await t.addUser('alice');
    await t.addClient('spa', { public: true, grants: ['password', 'refresh_token'], scope: 'todos:read' });
    web = await t.addClient('web', { grants: ['password', 'refresh_token', 'client_credentials'], scope: 'todos:read' });
  });
  afterAll(() => t.close());

  /** POST /token exactly as given: headers and an already-encoded body. */
  const raw = (body: string | Buffer, headers: Record<string, string> = {}) =>
    t.request
      .post('/token')
      .set({ 'Content-Type': FORM, ...headers })
      .serialize((b: unknown) => b as string) // the bytes as given (superagent would form-encode a Buffer)
      .send(body);

  function expectError(res: { status: number; body: Record<string, unknown> }, status: number, error: string): void {
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
  }

  describe('empty parameters are omitted (RFC 6749 §3.2): a public client with an empty secret', () => {
    it('signs in with Basic "spa:" from requests-oauthlib (fetch_token with username and password)', async () => {
      // OAuth2Session(client=LegacyApplicationClient('spa')).fetch_token(url, username=..., password=...):
      // with no client_secret it sends requests.auth.HTTPBasicAuth('spa', '') and no client_id
      const res = await raw(`grant_type=password&username=alice&password=${PASSWORD_FORM}`, { Authorization: `Basic ${b64('spa:')}` });
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body.access_token as string).payload).toMatchObject({ sub: aliceId, client_id: 'spa' });
    });

    it('signs in with client_secret= from requests-oauthlib (include_client_id=True, client_secret="")', async () => {
      // oauthlib prepare_token_request: grant_type, client_id, client_secret (even empty), then the rest
      const res = await raw(`grant_type=password&client_id=spa&client_secret=&username=alice&password=${PASSWORD_FORM}`);
      expect(res.status).toBe(200);
    });

    it('signs in with Basic "spa:" from Ruby oauth2 (auth_scheme :basic_auth, secret nil)', async () => {
      // Authenticator.encode_basic_auth: "Basic #{Base64.strict_encode64("#{id}:#{secret}")}"; Faraday
      // encodes the body with its keys sorted
      const res = await raw(`grant_type=password&password=${PASSWORD_FORM}&username=alice`, { Authorization: `Basic ${b64('spa:')}` });
      expect(res.status).toBe(200);
    });

    it('signs in with client_secret= from Ruby oauth2 (auth_scheme :request_body, secret "")', async () => {
      const res = await raw(`client_id=spa&client_secret=&grant_type=password&password=${PASSWORD_FORM}&username=alice`);
      expect(res.status).toBe(200);
    });

    it('signs in with Basic "spa:" from Go x/oauth2 (AuthStyleInHeader, ClientSecret "")', async () => {
      // req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret)); url.Values.Encode sorts keys
      const res = await raw(`grant_type=password&password=${PASSWORD_FORM}&username=alice`, { Authorization: `Basic ${b64('spa:')}` });
      expect(res.status).toBe(200);
    });

    it('signs in with client_secret= from authlib (token_endpoint_auth_method client_secret_post, no secret)', async () => {
      // encode_client_secret_post appends ('client_id', id), ('client_secret', secret or '')
      const res = await raw(`grant_type=password&username=alice&password=${PASSWORD_FORM}&client_id=spa&client_secret=`);
      expect(res.status).toBe(200);
    });

    it('refreshes and revokes with Basic "spa:"', async () => {
      const signIn = await raw(`grant_type=password&username=alice&password=${PASSWORD_FORM}`, { Authorization: `Basic ${b64('spa:')}` });
      const refresh = await raw(`grant_type=refresh_token&refresh_token=${signIn.body.refresh_token as string}`, { Authorization: `Basic ${b64('spa:')}` });
      expect(refresh.status).toBe(200);
      const revoke = await t.request.post('/revoke').set({ 'Content-Type': FORM, Authorization: `Basic ${b64('spa:')}` }).send(`token=${refresh.body.refresh_token as string}`);
      expect(revoke.status).toBe(200);
    });

    it('accepts Basic "spa:" with a matching client_id in the body', async () => {
      const res = await raw(`grant_type=password&username=alice&password=${PASSWORD_FORM}&client_id=spa`, { Authorization: `Basic ${b64('spa:')}` });
      expect(res.status).toBe(200);
    });

    it('still fails a confidential client that sends an empty secret, either way (401 invalid_client)', async () => {
      const basicEmpty = await raw('grant_type=client_credentials', { Authorization: `Basic ${b64('web:')}` });
      expectError(basicEmpty, 401, 'invalid_client');
      expect(basicEmpty.headers['www-authenticate']).toMatch(/^Basic /);
      const postEmpty = await raw('grant_type=client_credentials&client_id=web&client_secret=');
      expectError(postEmpty, 401, 'invalid_client');
    });

    it('takes an empty client_secret beside Basic credentials as omitted, not as a second method', async () => {
      const res = await raw('grant_type=client_credentials&client_secret=', { Authorization: basic(web) });
      expect(res.status).toBe(200);
    });

    it('takes scope= as no scope parameter: the client gets its default scope', async () => {
      const res = await raw('grant_type=client_credentials&scope=', { Authorization: basic(web) });
      expect(res.status).toBe(200);
      expect(res.body.scope).toBe('todos:read');
    });

    it('takes grant_type= as a missing grant_type (400 invalid_request)', async () => {
      const res = await raw('grant_type=&username=alice', { Authorization: basic(web) });
      expectError(res, 400, 'invalid_request');
      expect(res.body.error_description).toContain('grant_type');
    });

    it('takes an empty username or password as missing (400 invalid_request), not as a failed sign-in', async () => {
      expectError(await raw(`grant_type=password&username=&password=${PASSWORD_FORM}`, { Authorization: basic(web) }), 400, 'invalid_request');
      expectError(await raw('grant_type=password&username=alice&password=', { Authorization: basic(web) }), 400, 'invalid_request');
    });

    it('still refuses a parameter sent twice when one of the copies is empty', async () => {
      expectError(await raw('grant_type=client_credentials&scope=&scope=todos%3Aread', { Authorization: basic(web) }), 400, 'invalid_request');
    });
  });

  describe('client ids are VSCHAR, form-decoded in Basic (RFC 6749 §2.3.1, Appendix A.1)', () => {
    beforeAll(async () => {
      svc = await t.addClient('urn:example:svc+1', { grants: ['client_credentials'], scope: 'todos:read' });
    });

    it('authenticates urn:example:svc+1 with Basic from Go x/oauth2 clientcredentials (AuthStyleInHeader)', async () => {
      // url.QueryEscape: ':' → %3A, '+' → %2B; the scope is form-encoded in the body
      const header = `Basic ${b64(`urn%3Aexample%3Asvc%2B1:${svc.client_secret}`)}`;
      const res = await raw('grant_type=client_credentials&scope=todos%3Aread', { Authorization: header });
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body.access_token as string).payload).toMatchObject({ sub: 'urn:example:svc+1', client_id: 'urn:example:svc+1' });
    });

    it('authenticates urn:example:svc+1 with client_secret_post from Go x/oauth2 (AuthStyleInParams)', async () => {
      const res = await raw(`client_id=urn%3Aexample%3Asvc%2B1&client_secret=${svc.client_secret}&grant_type=client_credentials&scope=todos%3Aread`);
      expect(res.status).toBe(200);
    });

    it('refuses urn:example:svc+1 from a client that does not form-encode Basic (curl -u, requests): the id ends at the first colon', async () => {
      const res = await raw('grant_type=client_credentials', { Authorization: `Basic ${b64(`urn:example:svc+1:${svc.client_secret}`)}` });
      expectError(res, 401, 'invalid_client');
    });

    it('authenticates a client id made of every kind of VSCHAR, both ways, and introspects it unchanged', async () => {
      const id = ' a b!"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ ';
      const odd = await t.addClient(id, { grants: ['client_credentials'], audience: 'api' });
      const viaBasic = await raw('grant_type=client_credentials', { Authorization: basic(odd) });
      expect(viaBasic.status).toBe(200);
      const viaPost = await raw(new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: odd.client_secret ?? '' }).toString());
      expect(viaPost.status).toBe(200);
      const introspection = await t.request.post('/introspect').set({ 'Content-Type': FORM, Authorization: basic(odd) }).send(`token=${viaPost.body.access_token as string}`);
      expect(introspection.body).toMatchObject({ active: true, client_id: id, sub: id });
    });

    it.each([
      ['a control character', 'svc\t1'],
      ['a non-ASCII letter', 'café'],
      ['129 characters', 'x'.repeat(129)],
      ['nothing', ''],
    ])('refuses a client id with %s', async (_what, id) => {
      await expect(t.app.services.clients.add(id, { grants: ['client_credentials'] })).rejects.toThrow(/client_id/);
    });
  });

  describe('malformed percent-encoding is 400 invalid_request (RFC 6749 §3.2, WHATWG urlencoded)', () => {
    it.each([
      ['a truncated escape in scope', 'grant_type=client_credentials&scope=%E0%A4%A'],
      ['a non-hex escape in client_id', 'grant_type=client_credentials&client_id=%ZZ'],
      ['a lone % in client_id', 'grant_type=client_credentials&client_id=web%'],
      ['an escape that is not UTF-8 in password', 'grant_type=password&username=alice&password=%FF'],
      ['an escaped UTF-16 surrogate in username', 'grant_type=password&username=%ED%A0%80&password=x'],
      ['a malformed parameter name', 'grant_type=client_credentials&%ZZ=1'],
    ])('refuses %s', async (_what, body) => {
      const res = await raw(body, { Authorization: basic(web) });
      expectError(res, 400, 'invalid_request');
      expect(res.body.error_description).toMatch(/percent-encoding|UTF-8/);
    });

    it('refuses raw bytes that are not UTF-8', async () => {
      const body = Buffer.concat([Buffer.from('grant_type=password&username=alice&password='), Buffer.from([0xff, 0xfe])]);
      expectError(await raw(body, { Authorization: basic(web) }), 400, 'invalid_request');
    });

    it('counts no failed sign-in for a password it could not decode', async () => {
      await t.addUser('bob');
      for (let i = 0; i < 12; i++) await raw('grant_type=password&username=bob&password=%FF', { Authorization: basic(web) });
      const res = await raw(`grant_type=password&username=bob&password=${PASSWORD_FORM}`, { Authorization: basic(web) });
      expect(res.status).toBe(200);
    });
  });

  describe('client ids that would impersonate users (a client_credentials sub is the client id)', () => {
    const UUIDS = ['0b6f6a52-5a3e-4c1b-9a54-2f1d3e4c5b6a', '0B6F6A52-5A3E-4C1B-9A54-2F1D3E4C5B6A', '{0b6f6a52-5a3e-4c1b-9a54-2f1d3e4c5b6a}', '0b6f6a525a3e4c1b9a542f1d3e4c5b6a', 'urn:uuid:0b6f6a52-5a3e-4c1b-9a54-2f1d3e4c5b6a', '00000000-0000-0000-0000-000000000000'];

    it.each(UUIDS)('refuses to add a client named %s (the form of a user sub)', async (id) => {
      await expect(t.app.services.clients.add(id, { grants: ['client_credentials'] })).rejects.toThrow(/UUID/);
    });

    it("refuses to add a client named with an existing user's id, whatever its form", async () => {
      const now = t.clock.now();
      await new UserRepository(t.store.db).insert({ id: 'robot-7', username: 'robot', password_hash: 'x', enabled: 1, created_at: now, updated_at: now });
      await expect(t.app.services.clients.add('robot-7', { grants: ['client_credentials'] })).rejects.toThrow(/user/);
    });

    it("refuses client_credentials to a client from an older store named with alice's id (unauthorized_client)", async () => {
      const now = t.clock.now();
      await new ClientRepository(t.store.db).insert({
        client_id: aliceId,
        secret_hash: null,
        public: 0,
        grants: 'client_credentials',
        scope: 'todos:read',
        audience: 'todo-api',
        access_token_ttl: null,
        refresh_idle_ttl: null,
        refresh_absolute_ttl: null,
        refresh_grace_seconds: null,
        created_at: now,
        updated_at: now,
      });
      // a fresh secret through the service (a written row has none yet)
      const rotated = await t.app.services.clients.rotateSecret(aliceId);
      const res = await raw('grant_type=client_credentials', { Authorization: basic({ client_id: aliceId, client_secret: rotated }) });
      expectError(res, 400, 'unauthorized_client');
      expect(res.body.access_token).toBeUndefined();
    });
  });
});
