// Signature algorithms: ES256 by default; EdDSA, RS256 and PS256 selectable (keys.algorithm); every
// published key names its alg; HS256 is not offered (a shared secret would let every verifier mint
// tokens).
import crypto from 'node:crypto';
import { type JSONWebKeySet, SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { generateSigningKey } from '../../src/keys/generate.js';
import { parsePrivateKey } from '../../src/keys/import.js';
import { KeyError } from '../../src/keys/signingKey.js';
import { type TestApp, basic, createTestApp, decodeJwt, testConfig } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };

async function issue(t: TestApp, client: Creds): Promise<string> {
  const res = await t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'client_credentials' });
  expect(res.status).toBe(200);
  return res.body.access_token as string;
}

async function jwks(t: TestApp): Promise<JSONWebKeySet> {
  return JSON.parse((await t.request.get('/.well-known/jwks.json')).text) as JSONWebKeySet;
}

async function introspect(t: TestApp, client: Creds, token: string) {
  return (await t.request.post('/introspect').set('Authorization', basic(client)).type('form').send({ token })).body as Record<string, unknown>;
}

const verify = (t: TestApp, set: JSONWebKeySet, token: string, algorithms?: string[]) =>
  jwtVerify(token, createLocalJWKSet(set), { issuer: t.config.issuer, typ: 'at+jwt', currentDate: new Date(t.clock.now()), ...(algorithms ? { algorithms } : {}) });

describe('signature algorithms', () => {
  let t: TestApp;
  afterEach(() => t.close());

  it('signs with ES256 (P-256) by default', async () => {
    t = await createTestApp();
    expect(t.config.keys.algorithm).toBe('ES256');
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const token = await issue(t, api);
    expect(decodeJwt(token).header).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    const set = await jwks(t);
    for (const key of set.keys) expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    await expect(verify(t, set, token, ['ES256'])).resolves.toBeDefined();
  });

  const selectable = [
    { alg: 'EdDSA', kty: 'OKP', crv: 'Ed25519' },
    { alg: 'RS256', kty: 'RSA' },
    { alg: 'PS256', kty: 'RSA' },
  ] as const;

  for (const { alg, kty, ...rest } of selectable) {
    it(`signs with ${alg} when keys.algorithm selects it, and its tokens verify and introspect`, async () => {
      t = await createTestApp({ config: { keys: { algorithm: alg } } });
      const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
      const token = await issue(t, api);
      expect(decodeJwt(token).header.alg).toBe(alg);
      const set = await jwks(t);
      expect(set.keys).toHaveLength(2);
      for (const key of set.keys) {
        expect(key).toMatchObject({ kty, alg, use: 'sig', ...rest });
        expect(key.d).toBeUndefined();
        // RSA keys: at least 2048 bits
        if (kty === 'RSA') expect(Buffer.from(key.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
      }
      await expect(verify(t, set, token, [alg])).resolves.toMatchObject({ protectedHeader: { alg } });
      expect(await introspect(t, api, token)).toMatchObject({ active: true });
    });
  }

  it('names the alg on every published key, also while keys of two algorithms are published', async () => {
    t = await createTestApp();
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const esToken = await issue(t, api);
    // switching keys.algorithm: the following keys are EdDSA, the ES256 ones stay until retired
    await t.app.services.keys.rotate('EdDSA');
    await t.app.services.keys.rotate('EdDSA');
    await t.app.tick();
    const edToken = await issue(t, api);
    expect(decodeJwt(edToken).header.alg).toBe('EdDSA');
    const set = await jwks(t);
    expect(new Set(set.keys.map((k) => k.alg))).toEqual(new Set(['ES256', 'EdDSA']));
    for (const key of set.keys) {
      expect(key.alg).toMatch(/^(ES256|EdDSA)$/);
      expect(key.kid).toEqual(expect.any(String));
      expect(key.use).toBe('sig');
    }
    await expect(verify(t, set, esToken)).resolves.toBeDefined();
    await expect(verify(t, set, edToken)).resolves.toBeDefined();
    expect(await introspect(t, api, esToken)).toMatchObject({ active: true });
    expect(await introspect(t, api, edToken)).toMatchObject({ active: true });
  });

  it('does not accept HS256 (or any algorithm outside ES256, EdDSA, RS256, PS256) in config', () => {
    for (const alg of ['HS256', 'HS512', 'none', 'ES384', 'RS512', 'es256']) {
      expect(() => testConfig({ keys: { algorithm: alg } }), alg).toThrow(ConfigError);
      expect(() => testConfig({ keys: { algorithm: alg } }), alg).toThrow(/config: invalid keys\.algorithm/);
    }
  });

  it('treats an HS256 token under one of its kids as inactive (the public key is no HMAC secret)', async () => {
    t = await createTestApp();
    const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
    const real = decodeJwt(await issue(t, api));
    const [published] = (await jwks(t)).keys;
    const forged = await new SignJWT(real.payload)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: real.header.kid as string })
      .sign(Buffer.from(JSON.stringify(published)));
    expect(await introspect(t, api, forged)).toEqual({ active: false });
  });

  it('generates RSA keys of 2048 bits and refuses to import smaller ones', async () => {
    const { publicJwk } = await generateSigningKey('RS256');
    expect(Buffer.from(publicJwk.n!, 'base64url').length * 8).toBe(2048);
    const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(parsePrivateKey(small, { alg: 'RS256' })).rejects.toThrow(/at least 2048 bits/);
    await expect(parsePrivateKey(small, { alg: 'PS256' })).rejects.toThrow(KeyError);
  });

  it('takes the algorithm of an imported key from its type, the configured one first', async () => {
    const pem = (k: crypto.KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ed = crypto.generateKeyPairSync('ed25519').privateKey;
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect((await parsePrivateKey(pem(ec))).publicJwk.alg).toBe('ES256');
    expect((await parsePrivateKey(pem(ed))).publicJwk.alg).toBe('EdDSA');
    expect((await parsePrivateKey(pem(rsa))).publicJwk.alg).toBe('RS256');
    expect((await parsePrivateKey(pem(rsa), { preferred: 'PS256' })).publicJwk.alg).toBe('PS256');
    expect((await parsePrivateKey(pem(rsa), { alg: 'PS256', preferred: 'ES256' })).publicJwk.alg).toBe('PS256');
    // a key that can't sign the algorithm asked for
    await expect(parsePrivateKey(pem(ec), { alg: 'EdDSA' })).rejects.toThrow(/cannot sign EdDSA/);
    await expect(parsePrivateKey(pem(ed), { alg: 'RS256' })).rejects.toThrow(/cannot sign RS256/);
    const p384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    await expect(parsePrivateKey(pem(p384))).rejects.toThrow(/signs none of ES256, EdDSA, RS256, PS256/);
    // a symmetric JWK: HS256 is not offered
    await expect(parsePrivateKey(JSON.stringify({ kty: 'oct', k: crypto.randomBytes(32).toString('base64url') }))).rejects.toThrow(/HS256/);
    await expect(parsePrivateKey(JSON.stringify({ ...ec.export({ format: 'jwk' }), alg: 'HS256' }))).rejects.toThrow(/alg HS256 is not one of/);
  });
});
