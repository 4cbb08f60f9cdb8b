// New signing keys, and the JWK pair every key (generated or imported) is stored as.
import { type JWK, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { JwkPair, PublicJwk, SigningAlgorithm } from './signingKey.js';

/** A new key pair as (public JWK, private JWK), kid = RFC 7638 thumbprint. */
export async function generateSigningKey(alg: SigningAlgorithm): Promise<JwkPair> {
  const options = alg === 'RS256' || alg === 'PS256' ? { extractable: true, modulusLength: 2048 } : alg === 'EdDSA' ? { extractable: true, crv: 'Ed25519' } : { extractable: true };
  for (;;) {
    const { publicKey, privateKey } = await generateKeyPair(alg, options);
    const pair = await toJwkPair(alg, await exportJWK(publicKey), await exportJWK(privateKey));
    // a kid (base64url) that starts with "-" reads as an option on every command line
    // (`tollgate keys remove -x…`): one key in 64; draw again rather than make operators type `--`
    if (!pair.publicJwk.kid.startsWith('-')) return pair;
  }
}

/** The stored form of a key: the public JWK carries only the public members, both carry kid and alg. */
export async function toJwkPair(alg: SigningAlgorithm, pub: JWK, priv: JWK): Promise<JwkPair> {
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  const publicJwk: PublicJwk = { ...publicMembers(pub), kid, alg, use: 'sig' };
  return { publicJwk, privateJwk: { ...priv, kid, alg } };
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
function publicMembers(jwk: JWK): JWK {
  const out: JWK = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}
