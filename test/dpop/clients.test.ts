// DPoP end to end with client libraries nobody here wrote: oauth4webapi's DPoP() handle gets
// tokens from Tollgate (client_credentials, password via genericTokenEndpointRequest, refresh),
// retries on use_dpop_nonce by itself, and calls the to-do API, which checks the proof with
// tollgate/verifier. The verifier's own failure cases (wrong ath, other key, replay, a bound token
// as Bearer, ...) follow, with proofs from `dpop` and by hand.
import http from 'node:http';
import { generateKeyPair as dpopKeyPair, generateProof } from 'dpop';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TodoApp, createTodoApp } from '../../examples/todo-api/app.js';
import { systemClock } from '../../src/clock.js';
import { createVerifier, type Verifier } from '../../src/verifier/index.js';
import { PASSWORD, type TestApp, createTestApp, freePort } from '../helpers.js';
import { ath, proofKey, signProof } from './proofs.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

async function serve(handler: http.RequestListener, port = 0): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each([false, true])('DPoP with oauth4webapi (server nonces required: %s)', (requireNonce) => {
  let t: TestApp;
  let tollgate: { url: string; close(): Promise<void> };
  let api: { url: string; close(): Promise<void> };
  let todo: TodoApp;
  let verifier: Verifier;
  let as: oauth.AuthorizationServer;
  let svcSecret: string;
  let webSecret: string;

  beforeAll(async () => {
    // the issuer must be known before the server starts: htu is `${issuer}/token`
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    // real time: the verifier and the client libraries read the system clock
    t = await createTestApp({ clock: systemClock, config: { issuer, dpop: { requireNonce } } });
    tollgate = await serve(t.app.callback(), port);
    svcSecret = (await t.addClient('svc', { grants: ['client_credentials'], audience: 'todo-api', requireDpop: true })).client_secret ?? '';
    webSecret = (await t.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api' })).client_secret ?? '';
    await t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS', 'TODO_WRITER']);
    verifier = createVerifier({ issuer, audience: 'todo-api' });
    await verifier.ready();
    todo = createTodoApp({ verifier, dbPath: ':memory:' });
    api = await serve(todo.callback());
    as = { issuer, token_endpoint: `${issuer}/token` };
  });
  afterAll(async () => {
    await api?.close();
    todo?.close();
    verifier?.close();
    await tollgate?.close();
    await t?.close();
  });

  /** Runs a request, retrying once when the server asks for its nonce (RFC 9449 §8). */
  async function withNonceRetry<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (!oauth.isDPoPNonceError(e)) throw e;
      return run();
    }
  }

  it('gets a DPoP-bound client_credentials token (a client with --require-dpop)', async () => {
    const client: oauth.Client = { client_id: 'svc' };
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const tokens = await withNonceRetry(async () =>
      oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(svcSecret), {}, { DPoP, ...insecure })),
    );
    expect(tokens.token_type).toBe('dpop');
  });

  it('signs in, refreshes and calls the to-do API with the same key', async () => {
    const client: oauth.Client = { client_id: 'web' };
    const auth = oauth.ClientSecretBasic(webSecret);
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const signIn = await withNonceRetry(async () =>
      oauth.processGenericTokenEndpointResponse(as, client, await oauth.genericTokenEndpointRequest(as, client, auth, 'password', { username: 'alice', password: PASSWORD }, { DPoP, ...insecure })),
    );
    expect(signIn.token_type).toBe('dpop');
    const refreshed = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, signIn.refresh_token ?? '', { DPoP, ...insecure })));
    expect(refreshed.token_type).toBe('dpop');

    const todos = new URL(`${api.url}/todos`);
    const created = await oauth.protectedResourceRequest(refreshed.access_token, 'POST', todos, new Headers({ 'content-type': 'application/json' }), JSON.stringify({ text: 'bind the token' }), { DPoP, ...insecure });
    expect(created.status).toBe(201);
    const listed = await oauth.protectedResourceRequest(refreshed.access_token, 'GET', todos, undefined, undefined, { DPoP, ...insecure });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { todos: Array<{ text: string }> }).todos.map((x) => x.text)).toContain('bind the token');

    // the same token as Bearer: refused, with a DPoP challenge (RFC 9449 §7.1)
    const bearer = await fetch(todos, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
    expect(bearer.status).toBe(401);
    expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP realm="todo-api", error="invalid_token", error_description="[^"]*", algs="ES256 [^"]*"$/);
  });
});

describe('tollgate/verifier with DPoP proofs (RFC 9449 §7)', () => {
  let t: TestApp;
  let tollgate: { url: string; close(): Promise<void> };
  let verifier: Verifier;
  let issuer: string;
  let svcSecret: string;
  const API = 'https://api.example/todos';

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    t = await createTestApp({ clock: systemClock, config: { issuer } });
    tollgate = await serve(t.app.callback(), port);
    svcSecret = (await t.addClient('svc', { grants: ['client_credentials'], audience: 'todo-api' })).client_secret ?? '';
    verifier = createVerifier({ issuer, audience: 'todo-api', dpop: { maxAge: 60 } });
    await verifier.ready();
  });
  afterAll(async () => {
    verifier?.close();
    await tollgate?.close();
    await t?.close();
  });

  async function boundToken() {
    const keys = await dpopKeyPair('ES256');
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', dpop: await generateProof(keys, `${issuer}/token`, 'POST') },
      body: 'grant_type=client_credentials',
    });
    const body = (await res.json()) as { access_token: string; token_type: string };
    expect(body.token_type).toBe('DPoP');
    return { keys, token: body.access_token };
  }

  const codeOf = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { code?: string }) => e.code);

  it('accepts a proof with the right key, method, URL and ath', async () => {
    const { keys, token } = await boundToken();
    const claims = await verifier.verify(token, { dpop: { proof: await generateProof(keys, API, 'GET', undefined, token), method: 'GET', url: `${API}?page=2` } });
    expect(claims.cnf?.jkt).toEqual(expect.any(String));
  });

  it('refuses a bound token presented without a proof (as Bearer): ERR_DPOP_BINDING', async () => {
    const { token } = await boundToken();
    expect(await codeOf(verifier.verify(token))).toBe('ERR_DPOP_BINDING');
  });

  it('refuses a proof of another key: ERR_DPOP_BINDING', async () => {
    const { token } = await boundToken();
    const other = await dpopKeyPair('ES256');
    expect(await codeOf(verifier.verify(token, { dpop: { proof: await generateProof(other, API, 'GET', undefined, token), method: 'GET', url: API } }))).toBe('ERR_DPOP_BINDING');
  });

  it('refuses a proof whose ath is for another token: ERR_DPOP_PROOF', async () => {
    const { keys, token } = await boundToken();
    expect(await codeOf(verifier.verify(token, { dpop: { proof: await generateProof(keys, API, 'GET', undefined, 'another-token'), method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
  });

  it('refuses a proof without ath: ERR_DPOP_PROOF', async () => {
    const { keys, token } = await boundToken();
    expect(await codeOf(verifier.verify(token, { dpop: { proof: await generateProof(keys, API, 'GET'), method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
  });

  it('refuses a replayed proof: ERR_DPOP_REPLAY', async () => {
    const { keys, token } = await boundToken();
    const proof = await generateProof(keys, API, 'GET', undefined, token);
    await verifier.verify(token, { dpop: { proof, method: 'GET', url: API } });
    expect(await codeOf(verifier.verify(token, { dpop: { proof, method: 'GET', url: API } }))).toBe('ERR_DPOP_REPLAY');
  });

  it('refuses a wrong htm, an htu with a query and an htu of another resource: ERR_DPOP_PROOF', async () => {
    const { keys, token } = await boundToken();
    const check = async (htu: string, htm: string) => codeOf(verifier.verify(token, { dpop: { proof: await generateProof(keys, htu, htm, undefined, token), method: 'GET', url: API } }));
    expect(await check(API, 'POST')).toBe('ERR_DPOP_PROOF');
    expect(await check(`${API}?page=2`, 'GET')).toBe('ERR_DPOP_PROOF');
    expect(await check('https://api.example/other', 'GET')).toBe('ERR_DPOP_PROOF');
  });

  it('refuses an old iat, a private key in jwk, HS256 and none: ERR_DPOP_PROOF', async () => {
    const { token } = await boundToken();
    const key = await proofKey();
    const iat = Math.floor(Date.now() / 1000);
    const proofs = [
      await signProof(key, { htu: API, htm: 'GET', iat: iat - 600, ath: ath(token) }),
      await signProof(key, { htu: API, htm: 'GET', iat, ath: ath(token), header: { jwk: key.privateJwk } }),
    ];
    for (const proof of proofs) expect(await codeOf(verifier.verify(token, { dpop: { proof, method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
    const { hmacProof, unsignedProof } = await import('./proofs.js');
    expect(await codeOf(verifier.verify(token, { dpop: { proof: await hmacProof({ htu: API, htm: 'GET', iat }), method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
    expect(await codeOf(verifier.verify(token, { dpop: { proof: unsignedProof(key, { htu: API, htm: 'GET', iat }), method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
  });

  it('refuses an unbound token presented with a proof: ERR_DPOP_BINDING', async () => {
    const res = await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`svc:${svcSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    const { access_token: token } = (await res.json()) as { access_token: string };
    const keys = await dpopKeyPair('ES256');
    expect(await codeOf(verifier.verify(token, { dpop: { proof: await generateProof(keys, API, 'GET', undefined, token), method: 'GET', url: API } }))).toBe('ERR_DPOP_BINDING');
  });

  it('takes htu from publicUrl behind a proxy, and answers a bad proof with a DPoP invalid_dpop_proof challenge', async () => {
    const { keys, token } = await boundToken();
    const todo = createTodoApp({ verifier, dbPath: ':memory:', publicUrl: 'https://api.example' });
    const local = await serve(todo.callback());
    try {
      const call = async (htu: string) => fetch(`${local.url}/todos`, { headers: { authorization: `DPoP ${token}`, dpop: await generateProof(keys, htu, 'GET', undefined, token) } });
      const viaProxy = await call(API);
      expect(viaProxy.status).toBe(403); // the proof holds; svc's token has no RETRIEVE_TODOS role
      expect(viaProxy.headers.get('www-authenticate')).toMatch(/^DPoP realm="todo-api", error="insufficient_scope"/);
      const direct = await call(`${local.url}/todos`);
      expect(direct.status).toBe(401);
      expect(direct.headers.get('www-authenticate')).toBe(`DPoP realm="todo-api", error="invalid_dpop_proof", error_description="the DPoP proof htu is not the URL of this endpoint (without query and fragment)", algs="ES256 ES384 EdDSA Ed25519 RS256 PS256"`);
    } finally {
      await local.close();
      todo.close();
    }
  });
});
