// createVerifier({ cache }): a token verified once is not verified again in full, but everything
// that can change after its signature was checked still is, on every call: the clock (exp), the
// deny list (jti, sid, sub, client, kid), the JWK Set (a removed key), and the DPoP proof.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Verifier, type VerifierOptions, createVerifier } from '../../src/verifier/index.js';
import { ath, proofKey, signProof } from '../dpop/proofs.js';
import { type JwksServer, codeOf, eventually, makeSigningKey, signRaw, startJwksServer } from './fixtures.js';

const ISSUER = 'https://issuer.test';
const API = 'https://api.test/todos';

/** A deny-list feed that serves what `entries` holds, by cursor (the entry count). */
interface Feed {
  url: string;
  entries: object[];
  close(): Promise<void>;
}

async function startFeed(): Promise<Feed> {
  const entries: object[] = [];
  const server = http.createServer((req, res) => {
    const after = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('after') ?? 0);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cursor: String(entries.length), entries: entries.slice(after) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/deny-list`,
    entries,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let jwks: JwksServer;
let feed: Feed;
let key: Awaited<ReturnType<typeof makeSigningKey>>;
const open: Verifier[] = [];

beforeAll(async () => {
  key = await makeSigningKey('k1');
  jwks = await startJwksServer([key.jwk]);
  feed = await startFeed();
});

afterEach(() => {
  vi.useRealTimers();
  for (const v of open.splice(0)) v.close();
  feed.entries.length = 0;
  jwks.serve.keys = [key.jwk];
  jwks.serve.cacheControl = 'public, max-age=300';
});

afterAll(async () => {
  await jwks.close();
  await feed.close();
});

async function make(options: Partial<VerifierOptions> = {}): Promise<Verifier> {
  const v = createVerifier({
    issuer: ISSUER,
    audience: 'todo-api',
    jwksUri: jwks.url,
    denyList: { url: feed.url, clientId: 'api', clientSecret: 'secret', mode: 'poll', pollInterval: 0.02, maxStaleness: 3600 },
    cache: { maxEntries: 100 },
    ...options,
  });
  open.push(v);
  await v.ready();
  return v;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function token(overrides: Record<string, unknown> = {}, signer = key): Promise<string> {
  const now = nowSeconds();
  const claims = { iss: ISSUER, sub: crypto.randomUUID(), aud: 'todo-api', exp: now + 300, iat: now, jti: crypto.randomUUID(), client_id: crypto.randomUUID(), sid: crypto.randomUUID(), scope: '', roles: ['R'], ...overrides };
  return signRaw({ alg: 'ES256', kid: signer.kid, typ: 'at+jwt' }, claims, signer.privateKey);
}

const payload = (t: string) => JSON.parse(Buffer.from(t.split('.')[1] ?? '', 'base64url').toString()) as Record<string, string | number>;

describe('the token cache', () => {
  it('answers a token seen before with the same claims (frozen, so no caller can change what the next one sees)', async () => {
    const v = await make();
    const t = await token();
    const first = await v.verify(t);
    const second = await v.verify(t);
    expect(second).toBe(first);
    expect(second).toMatchObject({ iss: ISSUER, aud: 'todo-api', roles: ['R'] });
    expect(Object.isFrozen(second)).toBe(true);
    expect(Object.isFrozen(second.roles)).toBe(true);
  });

  it('is off unless asked for', async () => {
    const v = await make({ cache: undefined });
    const t = await token();
    expect(await v.verify(t)).not.toBe(await v.verify(t));
  });

  it('refuses a nonsensical maxEntries', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) expect(() => createVerifier({ issuer: ISSUER, audience: 'todo-api', cache: { maxEntries } })).toThrow(TypeError);
  });

  it.each([
    ['jti', (t: string) => ({ type: 'jti', value: payload(t).jti })],
    ['sid', (t: string) => ({ type: 'sid', value: payload(t).sid })],
    ['sub', (t: string) => ({ type: 'sub', value: payload(t).sub, issued_before: payload(t).iat })],
    ['client', (t: string) => ({ type: 'client', value: payload(t).client_id, issued_before: payload(t).iat })],
  ])('refuses a cached token once a %s entry revokes it', async (_type, entry) => {
    const v = await make();
    const t = await token();
    const claims = await v.verify(t);
    expect(await v.verify(t)).toBe(claims); // cached
    feed.entries.push({ ...entry(t), expires_at: nowSeconds() + 600 });
    await eventually(async () => expect(await codeOf(v.verify(t))).toBe('ERR_TOKEN_REVOKED'));
  });

  it('refuses the cached tokens of a key removed by a kid entry, and a token of another key still passes', async () => {
    const other = await makeSigningKey('k2');
    jwks.serve.keys = [key.jwk, other.jwk];
    const v = await make();
    const t = await token();
    const t2 = await token({}, other);
    await v.verify(t);
    const claims2 = await v.verify(t2);
    feed.entries.push({ type: 'kid', value: key.kid, expires_at: nowSeconds() + 600 });
    await eventually(async () => expect(await codeOf(v.verify(t))).toBe('ERR_TOKEN_REVOKED'));
    expect(await v.verify(t2)).toBe(claims2);
  });

  it('refuses a cached token once it has expired (clock tolerance included)', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const v = await make({ clockTolerance: 5 });
    const t = await token({ exp: nowSeconds() + 60 });
    const claims = await v.verify(t);
    vi.setSystemTime(Date.now() + 60_000); // exp is now, within the tolerance: still accepted, from the cache
    expect(await v.verify(t)).toBe(claims);
    vi.setSystemTime(Date.now() + 6_000);
    expect(await codeOf(v.verify(t))).toBe('ERR_TOKEN_EXPIRED');
  });

  it('refuses the cached tokens of a key the JWK Set no longer publishes, once the set is refetched', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    jwks.serve.cacheControl = 'public, max-age=10';
    const v = await make();
    const t = await token();
    const claims = await v.verify(t);
    expect(await v.verify(t)).toBe(claims);
    // the issuer unpublishes the key (a leaked key, removed to revoke what it signed)
    jwks.serve.keys = [(await makeSigningKey('k2')).jwk];
    const fetches = jwks.requests.length;
    vi.setSystemTime(Date.now() + 11_000);
    expect(await codeOf(v.verify(t))).toBe('ERR_TOKEN_SIGNATURE');
    expect(jwks.requests.length).toBe(fetches + 1);
  });

  it('refuses the cached tokens of a kid the JWK Set now publishes with another key', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    jwks.serve.cacheControl = 'public, max-age=10';
    const v = await make();
    const t = await token();
    await v.verify(t);
    jwks.serve.keys = [(await makeSigningKey(key.kid)).jwk];
    vi.setSystemTime(Date.now() + 11_000);
    expect(await codeOf(v.verify(t))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('is bounded: past maxEntries the least recently used token goes', async () => {
    const v = await make({ cache: { maxEntries: 2 } });
    const [a, b, c, d] = await Promise.all([token(), token(), token(), token()]);
    const ca = await v.verify(a!);
    const cb = await v.verify(b!);
    expect(await v.verify(a!)).toBe(ca); // a is now the most recently used
    const cc = await v.verify(c!); // evicts b
    expect(await v.verify(a!)).toBe(ca);
    expect(await v.verify(c!)).toBe(cc);
    const cb2 = await v.verify(b!); // verified in full again, evicting a
    expect(cb2).not.toBe(cb);
    expect(cb2).toEqual(cb);
    expect(await v.verify(a!)).not.toBe(ca);
    await v.verify(d!);
  });

  it('still asks a cached DPoP-bound token for a fresh proof on every call (RFC 9449 §7.1)', async () => {
    const pk = await proofKey();
    const v = await make();
    const t = await token({ cnf: { jkt: await calculateJwkThumbprint(pk.publicJwk) } });
    const proof = () => signProof(pk, { htm: 'GET', htu: API, iat: nowSeconds(), ath: ath(t) });
    const first = await proof();
    const claims = await v.verify(t, { dpop: { proof: first, method: 'GET', url: API } });
    expect(await codeOf(v.verify(t))).toBe('ERR_DPOP_BINDING');
    expect(await codeOf(v.verify(t, { dpop: { proof: undefined, method: 'GET', url: API } }))).toBe('ERR_DPOP_PROOF');
    expect(await codeOf(v.verify(t, { dpop: { proof: first, method: 'GET', url: API } }))).toBe('ERR_DPOP_REPLAY');
    const other = await proofKey();
    expect(await codeOf(v.verify(t, { dpop: { proof: await signProof(other, { htm: 'GET', htu: API, iat: nowSeconds(), ath: ath(t) }), method: 'GET', url: API } }))).toBe('ERR_DPOP_BINDING');
    expect(await v.verify(t, { dpop: { proof: await proof(), method: 'GET', url: API } })).toBe(claims);
  });
});
