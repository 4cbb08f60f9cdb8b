// createVerifier against a real Tollgate: every check, in order, with the code it fails with.
import crypto from 'node:crypto';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock, PASSWORD, basic } from '../helpers.js';
import { VerificationError, createVerifier } from '../../src/verifier/index.js';
import type { Verifier } from '../../src/verifier/index.js';
import { type Tollgate, claims, codeOf, eventually, login, signAsTollgate, signRaw, startTollgate } from './fixtures.js';

let tg: Tollgate;
let clock: FakeClock;
let verifier: Verifier;
let alice: string;
const verifiers: Verifier[] = [];

function make(options: Partial<Parameters<typeof createVerifier>[0]> = {}): Verifier {
  const v = createVerifier({ issuer: tg.url, audience: 'todo-api', ...options });
  verifiers.push(v);
  return v;
}

beforeAll(async () => {
  clock = new FakeClock(Date.now());
  tg = await startTollgate({ clock });
  alice = await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
  verifier = make();
  await verifier.ready();
});

afterAll(async () => {
  for (const v of verifiers) v.close();
  await tg.close();
});

describe('createVerifier: a good token', () => {
  it('returns the RFC 9068 claims of a token Tollgate issued', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const c = await verifier.verify(access_token);
    expect(c).toMatchObject({ iss: tg.url, sub: alice, aud: 'todo-api', client_id: 'web', roles: ['RETRIEVE_TODOS'] });
    expect(typeof c.jti).toBe('string');
    expect(typeof c.sid).toBe('string');
  });

  it('accepts a token whose aud is any one of several expected audiences', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(make({ audience: ['billing-api', 'todo-api'] }).verify(access_token))).toBe('resolved');
  });

  it('accepts a token whose aud array names this resource server', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, claims(tg, { aud: ['other', 'todo-api'] }))))).toBe('resolved');
  });

  it('accepts typ application/at+jwt in any case (RFC 9068 §4)', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { typ: 'Application/AT+JWT' }, claims(tg))))).toBe('resolved');
  });

  it('throws VerificationError instances with a stable code', async () => {
    const e = await verifier.verify('nope').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VerificationError);
    expect(e).toMatchObject({ name: 'VerificationError', code: 'ERR_TOKEN_MALFORMED' });
  });
});

describe('createVerifier: size and shape', () => {
  it('refuses a token longer than 8 KiB before decoding it', async () => {
    const big = await signAsTollgate(tg, {}, claims(tg, { padding: 'x'.repeat(9000) }));
    expect(await codeOf(verifier.verify(big))).toBe('ERR_TOKEN_MALFORMED');
  });

  it.each([
    ['an empty string', ''],
    ['two segments', 'eyJhbGciOiJFUzI1NiJ9.e30'],
    ['a JWE (five segments)', 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d'],
    ['characters outside base64url', 'eyJhbGciOiJFUzI1NiJ9.e30=.abc'],
    ['a header that is not JSON', `${Buffer.from('not json').toString('base64url')}.e30.abc`],
    ['a header that is a JSON array', `${Buffer.from('[1]').toString('base64url')}.e30.abc`],
  ])('refuses %s as ERR_TOKEN_MALFORMED', async (_what, token) => {
    expect(await codeOf(verifier.verify(token))).toBe('ERR_TOKEN_MALFORMED');
  });

  it('refuses a non-string token', async () => {
    expect(await codeOf(verifier.verify(undefined as unknown as string))).toBe('ERR_TOKEN_MALFORMED');
  });

  it('refuses a nested JWT (cty: JWT, RFC 7519 §5.2)', async () => {
    const inner = await signAsTollgate(tg, {}, claims(tg));
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { cty: 'JWT' }, inner)))).toBe('ERR_TOKEN_MALFORMED');
  });

  it('refuses a signed payload that is not a JSON object', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, 'just text')))).toBe('ERR_TOKEN_MALFORMED');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, '[1,2]')))).toBe('ERR_TOKEN_MALFORMED');
  });

  it.each(['sub', 'jti', 'client_id', 'exp', 'iat'])('refuses a token without the %s claim RFC 9068 requires', async (claim) => {
    const c = claims(tg);
    delete c[claim];
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, c)))).toBe('ERR_TOKEN_MALFORMED');
  });
});

describe('createVerifier: the header, before any signature is checked (RFC 8725)', () => {
  it('refuses alg none', async () => {
    const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const kid = tg.t.app.services.keyring.signingKey().kid;
    expect(await codeOf(verifier.verify(`${enc({ alg: 'none', typ: 'at+jwt', kid })}.${enc(claims(tg))}.`))).toBe('ERR_TOKEN_ALGORITHM');
  });

  it("refuses HS256 signed with the issuer's public key as the HMAC secret", async () => {
    const { kid } = tg.t.app.services.keyring.signingKey();
    const jwks = (await (await fetch(`${tg.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    const jwk = jwks.keys.find((k) => k.kid === kid)!;
    const pem = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(jwk))]) {
      const forged = await new SignJWT(claims(tg)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(secret);
      expect(await codeOf(verifier.verify(forged))).toBe('ERR_TOKEN_ALGORITHM');
    }
  });

  it('refuses an algorithm outside the configured allow-list', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(make({ algorithms: ['EdDSA'] }).verify(access_token))).toBe('ERR_TOKEN_ALGORITHM');
  });

  it('cannot be configured with a symmetric or unknown algorithm', () => {
    expect(() => createVerifier({ issuer: tg.url, audience: 'todo-api', algorithms: ['HS256'] })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'todo-api', algorithms: ['none'] })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'todo-api', algorithms: [] })).toThrow(TypeError);
  });

  it('cannot be configured without an issuer or an audience', () => {
    expect(() => createVerifier({ issuer: '', audience: 'todo-api' })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: [] })).toThrow(TypeError);
  });

  it.each([
    ['jku', 'https://attacker.example/jwks.json'],
    ['x5u', 'https://attacker.example/cert.pem'],
    ['jwk', { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }],
    ['x5c', ['MIIB']],
  ])('refuses a token that carries its own key in the %s header', async (name, value) => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { [name]: value }, claims(tg))))).toBe('ERR_TOKEN_MALFORMED');
  });

  it('refuses a token with critical extensions it does not understand (crit)', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { crit: ['exp'] }, claims(tg))))).toBe('ERR_TOKEN_MALFORMED');
  });

  it('refuses a token without a kid', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { kid: undefined }, claims(tg))))).toBe('ERR_TOKEN_MALFORMED');
  });
});

describe('createVerifier: the signature', () => {
  it('refuses a token whose payload was changed after signing', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const [h, p, s] = access_token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.roles = ['RETRIEVE_TODOS', 'ADMIN'];
    expect(await codeOf(verifier.verify(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('refuses a token signed by a foreign key that reuses a known kid', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const { kid } = tg.t.app.services.keyring.signingKey();
    expect(await codeOf(verifier.verify(await signRaw({ alg: 'ES256', typ: 'at+jwt', kid }, claims(tg), privateKey)))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('refuses a token whose kid the issuer does not publish', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    expect(await codeOf(verifier.verify(await signRaw({ alg: 'ES256', typ: 'at+jwt', kid: 'not-a-kid-of-tollgate' }, claims(tg), privateKey)))).toBe('ERR_TOKEN_SIGNATURE');
  });

  it('does not refetch the JWK Set for every unknown kid (jose cooldown)', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const jwksFetches = () => tg.requests.filter((r) => r.url === '/.well-known/jwks.json').length;
    await verifier.verify((await login(tg, 'alice', PASSWORD)).access_token);
    const before = jwksFetches();
    for (let i = 0; i < 5; i++) await codeOf(verifier.verify(await signRaw({ alg: 'ES256', typ: 'at+jwt', kid: `unknown-${i}` }, claims(tg), privateKey)));
    expect(jwksFetches() - before).toBeLessThanOrEqual(1);
  });

  it('accepts a token signed by the pre-published next key once it becomes active', async () => {
    await tg.t.app.services.keys.rotate('ES256');
    await tg.t.app.services.keyring.refresh();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(verifier.verify(access_token))).toBe('resolved');
  });

  it('reports an unreachable JWK Set as ERR_JWKS_UNAVAILABLE, not as a bad token', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const v = make({ jwksUri: 'http://127.0.0.1:1/.well-known/jwks.json' });
    expect(await codeOf(v.ready())).toBe('ERR_JWKS_UNAVAILABLE');
    expect(await codeOf(v.verify(access_token))).toBe('ERR_JWKS_UNAVAILABLE');
  });
});

describe('createVerifier: the claims', () => {
  it('refuses a JWT that is not an access token (typ JWT, or no typ)', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { typ: 'JWT' }, claims(tg))))).toBe('ERR_TOKEN_TYPE');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { typ: undefined }, claims(tg))))).toBe('ERR_TOKEN_TYPE');
  });

  it('refuses a token from another issuer', async () => {
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, claims(tg, { iss: 'https://auth.other.example' }))))).toBe('ERR_TOKEN_ISSUER');
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(make({ issuer: 'https://auth.other.example', jwksUri: `${tg.url}/.well-known/jwks.json` }).verify(access_token))).toBe('ERR_TOKEN_ISSUER');
  });

  it('refuses a token for another audience', async () => {
    const billing = await tg.t.addClient('billing-web', { audience: 'billing-api' });
    const { access_token } = await login(tg, 'alice', PASSWORD, billing);
    expect(await codeOf(verifier.verify(access_token))).toBe('ERR_TOKEN_AUDIENCE');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, claims(tg, { aud: undefined }))))).toBe('ERR_TOKEN_AUDIENCE');
  });

  it('refuses an expired token, allowing clockTolerance seconds of skew', async () => {
    const saved = clock.ms;
    clock.advance(-310); // Tollgate's clock 310 s behind: a 300 s token that expired 10 s ago
    const { access_token } = await login(tg, 'alice', PASSWORD);
    clock.ms = saved;
    expect(await codeOf(verifier.verify(access_token))).toBe('ERR_TOKEN_EXPIRED');
    expect(await codeOf(make({ clockTolerance: 0 }).verify(access_token))).toBe('ERR_TOKEN_EXPIRED');
    expect(await codeOf(make({ clockTolerance: 60 }).verify(access_token))).toBe('resolved');
  });

  it('refuses a token that is not yet valid (nbf, or iat in the future)', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, claims(tg, { nbf: now + 60 }))))).toBe('ERR_TOKEN_NOT_YET_VALID');
    const saved = clock.ms;
    clock.advance(60);
    const { access_token } = await login(tg, 'alice', PASSWORD);
    clock.ms = saved;
    expect(await codeOf(verifier.verify(access_token))).toBe('ERR_TOKEN_NOT_YET_VALID');
    expect(await codeOf(make({ clockTolerance: 120 }).verify(access_token))).toBe('resolved');
  });

  it('checks in order: a token wrong in every way is reported by its earliest failure', async () => {
    const everythingWrong = claims(tg, { iss: 'x', aud: 'y', exp: 1 });
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, { typ: 'JWT' }, everythingWrong)))).toBe('ERR_TOKEN_TYPE');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, everythingWrong)))).toBe('ERR_TOKEN_ISSUER');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, { ...everythingWrong, iss: tg.url })))).toBe('ERR_TOKEN_AUDIENCE');
  });
});

describe('createVerifier: the deny list', () => {
  let guarded: Verifier;
  beforeAll(async () => {
    guarded = make({ denyList: { url: `${tg.url}/deny-list`, clientId: tg.feed.client_id, clientSecret: tg.feed.client_secret, mode: 'stream' } });
    await guarded.ready();
  });

  it('refuses a token whose jti was revoked (RFC 7009)', async () => {
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(guarded.verify(access_token))).toBe('resolved');
    const res = await tg.t.request.post('/revoke').set('Authorization', basic(tg.web)).type('form').send({ token: access_token, token_type_hint: 'access_token' });
    expect(res.status).toBe(200);
    await eventually(async () => expect(await codeOf(guarded.verify(access_token))).toBe('ERR_TOKEN_REVOKED'));
  });

  it("refuses every access token of a revoked refresh token's family (sid)", async () => {
    const first = await login(tg, 'alice', PASSWORD);
    const refreshed = await tg.t.request.post('/token').set('Authorization', basic(tg.web)).type('form').send({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(refreshed.status).toBe(200);
    const other = await login(tg, 'alice', PASSWORD); // another session: another family
    await tg.t.request.post('/revoke').set('Authorization', basic(tg.web)).type('form').send({ token: refreshed.body.refresh_token }).expect(200);
    await eventually(async () => expect(await codeOf(guarded.verify(refreshed.body.access_token))).toBe('ERR_TOKEN_REVOKED'));
    expect(await codeOf(guarded.verify(first.access_token))).toBe('ERR_TOKEN_REVOKED');
    expect(await codeOf(guarded.verify(other.access_token))).toBe('resolved');
  });

  it('refuses tokens of a user issued up to a sub entry (same second included), and accepts later ones', async () => {
    const bob = await tg.t.addUser('bob', PASSWORD, []);
    const before = await login(tg, 'bob', PASSWORD);
    await tg.t.app.services.users.logout('bob');
    await eventually(async () => expect(await codeOf(guarded.verify(before.access_token))).toBe('ERR_TOKEN_REVOKED'));
    const saved = clock.ms;
    clock.advance(1);
    const after = await login(tg, 'bob', PASSWORD);
    clock.ms = saved;
    expect((await guarded.verify(after.access_token)).sub).toBe(bob);
  });
});
