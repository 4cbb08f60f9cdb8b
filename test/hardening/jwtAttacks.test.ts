// JWT attacks at introspection (issue 5 §3, RFC 8725): every forged or bent access token is
// exactly {"active": false} (RFC 7662 §2.2), never a 500. Where the attack is a header or a shape
// rather than a key, the token is signed with Tollgate's own active key, so the refusal can only
// come from the check under test; a control token built the same way is active.
import crypto from 'node:crypto';
import { type JWK, type JWTHeaderParameters, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TOKEN_LENGTH } from '../../src/tokens/accessTokens.js';
import { type TestApp, basic, createTestApp, decodeJwt, passwordGrant } from '../helpers.js';

type Json = Record<string, unknown>;

const b64 = (v: string | Buffer | Json) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

/** A compact JWS signed with an ES256 key (node:crypto), whatever the header and payload say. */
function signES256(header: Json, payload: Json | string, key: crypto.KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

function hs256(header: Json, payload: Json, secret: Buffer | string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('JWT attacks at introspection', () => {
  let t: TestApp;
  let rs: { client_id: string; client_secret?: string };
  let genuine: string;
  let claims: Json;
  let kid: string;
  let ourKey: crypto.KeyObject;
  let publishedJwk: JWK;
  let ours: JWTHeaderParameters;

  beforeAll(async () => {
    t = await createTestApp();
    await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
    const web = await t.addClient('web', { grants: ['password'], scope: 'todos:read', audience: 'todo-api' });
    rs = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const res = await passwordGrant(t, web, 'alice');
    expect(res.status).toBe(200);
    genuine = res.body.access_token;
    claims = decodeJwt(genuine).payload;
    const active = t.app.services.keyring.signingKey();
    kid = active.kid;
    ourKey = crypto.KeyObject.from(active.privateKey);
    ours = { alg: 'ES256', kid, typ: 'at+jwt' };
    const jwks = (await t.request.get('/.well-known/jwks.json')).body as { keys: JWK[] };
    publishedJwk = jwks.keys.find((k) => k.kid === kid) as JWK;
    expect(publishedJwk).toBeDefined();
  });
  afterAll(() => t.close());

  async function introspect(token: string) {
    const res = await t.request.post('/introspect').set('Authorization', basic(rs)).type('form').send({ token });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    return res.body as Json;
  }

  async function expectInactive(token: string) {
    expect(await introspect(token)).toEqual({ active: false });
  }

  describe('controls: the same construction with nothing wrong is active', () => {
    it('the token Tollgate issued', async () => {
      expect(await introspect(genuine)).toMatchObject({ active: true, sub: claims.sub, jti: claims.jti });
    });

    it('a token the test signs with the active key and the right header', async () => {
      expect(await introspect(signES256(ours, claims, ourKey))).toMatchObject({ active: true, jti: claims.jti });
    });
  });

  describe('algorithm confusion', () => {
    it.each([['none'], ['None'], ['NONE'], ['nOnE']])('alg %s with an empty signature', async (alg) => {
      await expectInactive(`${b64({ ...ours, alg })}.${b64(claims)}.`);
      await expectInactive(`${b64({ alg, typ: 'at+jwt' })}.${b64(claims)}.`);
    });

    it('alg none with the genuine signature left on', async () => {
      await expectInactive(`${b64({ ...ours, alg: 'none' })}.${b64(claims)}.${genuine.split('.')[2]}`);
    });

    it('HS256 keyed with the published public key as a JWK (RFC 8725 §2.1)', async () => {
      await expectInactive(hs256({ ...ours, alg: 'HS256' }, claims, JSON.stringify(publishedJwk)));
      const { kid: _kid, alg: _alg, use: _use, ...bare } = publishedJwk;
      await expectInactive(hs256({ ...ours, alg: 'HS256' }, claims, JSON.stringify(bare)));
    });

    it('HS256 keyed with the published public key as PEM and DER', async () => {
      const publicKey = crypto.createPublicKey({ key: publishedJwk as crypto.JsonWebKey, format: 'jwk' });
      const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
      await expectInactive(hs256({ ...ours, alg: 'HS256' }, claims, pem));
      await expectInactive(hs256({ ...ours, alg: 'HS256' }, claims, pem.trim()));
      await expectInactive(hs256({ ...ours, alg: 'HS256' }, claims, publicKey.export({ type: 'spki', format: 'der' })));
      // the same attack built with jose
      await expectInactive(await new SignJWT(claims).setProtectedHeader({ ...ours, alg: 'HS256' }).sign(new TextEncoder().encode(pem)));
    });

    it('an algorithm other than the key’s (ES384, RS256, PS256, EdDSA) under our kid', async () => {
      for (const alg of ['ES384', 'RS256', 'PS256', 'EdDSA'] as const) {
        const { privateKey } = await generateKeyPair(alg, { extractable: true });
        await expectInactive(await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(privateKey));
      }
    });
  });

  describe('key selection', () => {
    it('an unknown kid, even signed with the active key', async () => {
      await expectInactive(signES256({ ...ours, kid: 'not-a-kid-of-ours' }, claims, ourKey));
      await expectInactive(signES256({ ...ours, kid: '' }, claims, ourKey));
      await expectInactive(signES256({ ...ours, kid: '__proto__' }, claims, ourKey));
    });

    it('no kid at all, or a kid that is not a string', async () => {
      const { kid: _kid, ...noKid } = ours;
      await expectInactive(signES256(noKid, claims, ourKey));
      await expectInactive(signES256({ ...ours, kid: [kid] }, claims, ourKey));
      await expectInactive(signES256({ ...ours, kid: { kid } }, claims, ourKey));
    });

    it('a foreign ES256 key that reuses our kid', async () => {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      await expectInactive(await new SignJWT(claims).setProtectedHeader(ours).sign(privateKey));
    });

    for (const member of ['jku', 'x5u'] as const) {
      it(`a ${member} header pointing at the attacker's keys (RFC 8725 §3.10)`, async () => {
        await expectInactive(signES256({ ...ours, [member]: 'https://attacker.example/jwks.json' }, claims, ourKey));
        const { privateKey } = await generateKeyPair('ES256', { extractable: true });
        await expectInactive(await new SignJWT(claims).setProtectedHeader({ ...ours, [member]: 'https://attacker.example/jwks.json' }).sign(privateKey));
      });
    }

    it('an embedded jwk header carrying the attacker’s public key', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = await exportJWK(publicKey);
      await expectInactive(await new SignJWT(claims).setProtectedHeader({ ...ours, jwk }).sign(privateKey));
      const { kid: _kid, ...noKid } = ours;
      await expectInactive(await new SignJWT(claims).setProtectedHeader({ ...noKid, jwk }).sign(privateKey));
      // even our own public key embedded next to a valid signature: the header is refused
      await expectInactive(signES256({ ...ours, jwk: publishedJwk }, claims, ourKey));
    });

    it('an embedded x5c certificate chain', async () => {
      const fakeCert = Buffer.from('not really a certificate').toString('base64');
      await expectInactive(signES256({ ...ours, x5c: [fakeCert] }, claims, ourKey));
      await expectInactive(signES256({ ...ours, x5t: 'abc', 'x5t#S256': 'def' }, claims, ourKey));
    });
  });

  describe('integrity', () => {
    it('a tampered payload keeping the genuine header and signature', async () => {
      const [h, , s] = genuine.split('.');
      for (const change of [{ scope: 'todos:read todos:write admin' }, { roles: ['ADMIN'] }, { exp: Number(claims.exp) + 86400 }, { sub: crypto.randomUUID() }, { client_id: 'todo-api' }]) {
        await expectInactive(`${h}.${b64({ ...claims, ...change })}.${s}`);
      }
    });

    it('a tampered header keeping the genuine payload and signature', async () => {
      const [, p, s] = genuine.split('.');
      await expectInactive(`${b64({ ...ours, typ: 'JWT' })}.${p}.${s}`);
      await expectInactive(`${b64({ ...ours, extra: 1 })}.${p}.${s}`);
    });

    it('a missing, truncated or garbage signature', async () => {
      const [h, p, s = ''] = genuine.split('.');
      await expectInactive(`${h}.${p}.`);
      await expectInactive(`${h}.${p}`);
      await expectInactive(`${h}.${p}.${s.slice(0, -4)}`);
      await expectInactive(`${h}.${p}.${'A'.repeat(s.length)}`);
      await expectInactive(`${h}.${p}.${s}.${s}`);
    });
  });

  describe('token type and header extensions', () => {
    it.each([['JWT'], ['jwt'], ['dpop+jwt'], ['id_token+jwt'], ['at+jws'], ['']])('typ %j', async (typ) => {
      await expectInactive(signES256({ ...ours, typ }, claims, ourKey));
    });

    it('no typ at all (an ID token or a generic JWT)', async () => {
      const { typ: _typ, ...noTyp } = ours;
      await expectInactive(signES256(noTyp, claims, ourKey));
    });

    it('a crit header, even for a member that is present (RFC 7515 §4.1.11)', async () => {
      await expectInactive(signES256({ ...ours, crit: ['exp'] }, claims, ourKey));
      await expectInactive(signES256({ ...ours, crit: ['urn:example:policy'], 'urn:example:policy': 'x' }, claims, ourKey));
      await expectInactive(signES256({ ...ours, crit: [] }, claims, ourKey));
    });

    it('unencoded payload (b64: false, RFC 7797)', async () => {
      await expectInactive(signES256({ ...ours, b64: false, crit: ['b64'] }, claims, ourKey));
    });
  });

  describe('nesting and size', () => {
    it('a nested JWT: cty JWT around our own valid access token', async () => {
      await expectInactive(signES256({ ...ours, cty: 'JWT' }, genuine, ourKey));
    });

    it('a JWT whose payload is a JWT, without cty', async () => {
      await expectInactive(signES256(ours, genuine, ourKey));
    });

    it('cty JWT over a plain claims set (ours are never nested)', async () => {
      await expectInactive(signES256({ ...ours, cty: 'JWT' }, claims, ourKey));
    });

    it('a JWE-shaped token (five parts)', async () => {
      await expectInactive(`${b64({ alg: 'dir', enc: 'A256GCM', kid, cty: 'JWT' })}..${b64('iv')}.${b64(genuine)}.${b64('tag')}`);
    });

    it(`an oversized token (over ${MAX_TOKEN_LENGTH} characters), although signed with the active key`, async () => {
      const sized = (padding: number) => signES256(ours, { ...claims, padding: 'x'.repeat(padding) }, ourKey);
      // base64url: four characters for every three bytes of padding
      const small = sized(Math.floor(((MAX_TOKEN_LENGTH - sized(0).length - 100) * 3) / 4));
      expect(small.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
      expect((await introspect(small)).active).toBe(true);
      const big = sized(MAX_TOKEN_LENGTH);
      expect(big.length).toBeGreaterThan(MAX_TOKEN_LENGTH);
      await expectInactive(big);
    });
  });

  describe('claims', () => {
    it('an expired token, another issuer, a missing or non-numeric exp, though validly signed', async () => {
      const now = Math.floor(t.clock.now() / 1000);
      await expectInactive(signES256(ours, { ...claims, iat: now - 7200, exp: now - 3600 }, ourKey));
      await expectInactive(signES256(ours, { ...claims, iss: 'https://attacker.example' }, ourKey));
      const { exp: _exp, ...noExp } = claims;
      await expectInactive(signES256(ours, noExp, ourKey));
      await expectInactive(signES256(ours, { ...claims, exp: String(claims.exp) }, ourKey));
    });

    it('a payload that is not a JSON object', async () => {
      for (const payload of ['[]', 'null', '"a string"', '42', '{not json', '']) await expectInactive(signES256(ours, payload, ourKey));
    });
  });
});
