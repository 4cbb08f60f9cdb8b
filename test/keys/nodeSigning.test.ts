// Tollgate signs its own tokens with node:crypto (src/keys/jws.ts), not jose: every algorithm it
// offers must still give a JWS that jose verifies against the published JWK (RFC 7515 §7.1,
// RFC 7518 §3.3–3.5, RFC 8037 §3.1), with exactly the protected header {alg, kid, typ}.
import crypto from 'node:crypto';
import { compactVerify, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { encryptPrivateKey } from '../../src/keys/encryption.js';
import { generateSigningKey } from '../../src/keys/generate.js';
import { ALGORITHMS, type ActiveKey, type JwkPair, KeyError, type SigningAlgorithm, importActive } from '../../src/keys/signingKey.js';
import type { SigningKeyRow } from '../../src/store/schema.js';

const kek = crypto.randomBytes(32);

function row(pair: JwkPair, alg: string = pair.publicJwk.alg): SigningKeyRow {
  const { kid } = pair.publicJwk;
  return { kid, alg, state: 'active', public_jwk: JSON.stringify(pair.publicJwk), private_jwk_enc: encryptPrivateKey(kek, kid, JSON.stringify(pair.privateJwk)), created_at: 0, activated_at: 0, retired_at: null, removed_at: null };
}

const pairs = new Map<SigningAlgorithm, Promise<JwkPair>>();
const pairFor = (alg: SigningAlgorithm) => {
  let p = pairs.get(alg);
  if (!p) pairs.set(alg, (p = generateSigningKey(alg)));
  return p;
};

const headerOf = (token: string) => Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8');

describe('signing with node:crypto', () => {
  describe.each(ALGORITHMS)('%s', (alg) => {
    let pair: JwkPair;
    let active: ActiveKey;
    const load = async () => {
      pair = await pairFor(alg);
      active = await importActive(kek, row(pair));
    };

    it('makes a JWT that jose verifies against the published JWK, header exactly {alg, kid, typ}', async () => {
      await load();
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: 'https://issuer.example', sub: 'alice', aud: 'todo-api', exp: now + 60, iat: now, jti: crypto.randomUUID(), client_id: 'web', scope: 'todos:read' };
      const token = active.signer.sign('at+jwt', JSON.stringify(claims));
      expect(headerOf(token)).toBe(JSON.stringify({ alg, kid: pair.publicJwk.kid, typ: 'at+jwt' }));
      const { payload, protectedHeader } = await jwtVerify(token, await importJWK(pair.publicJwk, alg), { algorithms: [alg], typ: 'at+jwt', issuer: 'https://issuer.example' });
      expect(payload).toEqual(claims);
      expect(protectedHeader).toEqual({ alg, kid: pair.publicJwk.kid, typ: 'at+jwt' });
    });

    it('encodes the payload as UTF-8 and keeps one header per typ', async () => {
      await load();
      const payload = JSON.stringify({ sub: 'zoë', note: '✓ 日本' });
      const a = active.signer.sign('statuslist+jwt', payload);
      const b = active.signer.sign('at+jwt', payload);
      expect(headerOf(a)).toBe(JSON.stringify({ alg, kid: pair.publicJwk.kid, typ: 'statuslist+jwt' }));
      expect(headerOf(b)).toBe(JSON.stringify({ alg, kid: pair.publicJwk.kid, typ: 'at+jwt' }));
      const key = await importJWK(pair.publicJwk, alg);
      for (const token of [a, b]) expect(new TextDecoder().decode((await compactVerify(token, key, { algorithms: [alg] })).payload)).toBe(payload);
    });
  });

  it('signs PS256 with a 32-byte salt (RFC 7518 §3.5): a verifier that insists on it accepts', async () => {
    const pair = await pairFor('PS256');
    const active = await importActive(kek, row(pair));
    const token = active.signer.sign('at+jwt', '{"sub":"alice"}');
    const [h, p, s] = token.split('.') as [string, string, string];
    const publicKey = crypto.createPublicKey({ key: JSON.parse(JSON.stringify(pair.publicJwk)) as crypto.JsonWebKey, format: 'jwk' });
    const verify = (saltLength: number) => crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength }, Buffer.from(s, 'base64url'));
    expect(verify(32)).toBe(true);
    expect(verify(20)).toBe(false);
  });

  it('refuses to load a stored key whose type does not sign its alg', async () => {
    const ec = await pairFor('ES256');
    await expect(importActive(kek, row(ec, 'EdDSA'))).rejects.toBeInstanceOf(Error);
    const ed = await pairFor('EdDSA');
    await expect(importActive(kek, row(ed, 'ES256'))).rejects.toBeInstanceOf(Error);
    // jose accepts an RSA JWK for either RSA alg; node's check refuses an EC key for RS256
    await expect(importActive(kek, row(ec, 'RS256'))).rejects.toBeInstanceOf(Error);
    await expect(importActive(kek, row(ed, 'BOGUS'))).rejects.toBeInstanceOf(KeyError);
  });
});
