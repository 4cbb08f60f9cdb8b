// Importing an operator's private key: PEM (PKCS#8, SEC1 or PKCS#1) or a private JWK, checked for
// an algorithm Tollgate signs with before it is stored.
import crypto from 'node:crypto';
import { type JWK, importJWK } from 'jose';
import { toJwkPair } from './generate.js';
import { ALGORITHMS, type JwkPair, KeyError, type SigningAlgorithm, isAlgorithm } from './signingKey.js';

/**
 * An imported private key (PEM: PKCS#8, SEC1 or PKCS#1; or a private JWK). Without `alg`, the
 * key's type decides (EC P-256 → ES256, Ed25519 → EdDSA, RSA → RS256 or PS256, `preferred` first).
 */
export async function parsePrivateKey(text: string, options: { alg?: SigningAlgorithm | undefined; preferred?: SigningAlgorithm } = {}): Promise<JwkPair> {
  const { key, declared } = readPrivateKey(text);
  if (options.alg && declared && options.alg !== declared) throw new KeyError(`the JWK's alg ${declared} is not ${options.alg}`);
  const fits = algorithmsFor(key);
  const alg = options.alg ?? declared ?? (options.preferred && fits.includes(options.preferred) ? options.preferred : fits[0]);
  if (!alg) throw new KeyError(`a ${describeKey(key)} key signs none of ${ALGORITHMS.join(', ')}`);
  if (!fits.includes(alg)) throw new KeyError(`a ${describeKey(key)} key cannot sign ${alg}`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < 2048) throw new KeyError(`RSA keys must have at least 2048 bits (this one has ${bits})`);
  const priv = key.export({ format: 'jwk' }) as JWK;
  await importJWK(priv, alg).catch(() => {
    throw new KeyError(`the key is not a usable ${alg} private key`);
  });
  const pub = crypto.createPublicKey(key).export({ format: 'jwk' }) as JWK;
  return toJwkPair(alg, pub, priv);
}

function readPrivateKey(text: string): { key: crypto.KeyObject; declared?: SigningAlgorithm } {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let jwk: unknown;
    try {
      jwk = JSON.parse(trimmed);
    } catch {
      throw new KeyError('the file is neither a PEM private key nor valid JSON');
    }
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new KeyError('the JSON is not a JWK object');
    const { kty, d, alg } = jwk as JWK;
    // a shared secret would let every verifier mint tokens: HS256 is not offered (RFC 8725 §3.5)
    if (kty === 'oct') throw new KeyError('symmetric keys (HS256) are not accepted: import an EC, Ed25519 or RSA private key');
    if (typeof d !== 'string') throw new KeyError('the JWK has no private part ("d")');
    if (alg !== undefined && !isAlgorithm(alg)) throw new KeyError(`the JWK's alg ${alg} is not one of ${ALGORITHMS.join(', ')}`);
    try {
      const key = crypto.createPrivateKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
      return alg === undefined ? { key } : { key, declared: alg };
    } catch {
      throw new KeyError('the JWK is not a valid private key');
    }
  }
  if (trimmed.includes('-----BEGIN')) {
    if (trimmed.includes('ENCRYPTED PRIVATE KEY')) throw new KeyError('the PEM is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)');
    try {
      return { key: crypto.createPrivateKey(trimmed) };
    } catch {
      throw new KeyError('the PEM is not a readable private key');
    }
  }
  throw new KeyError('the file is neither a PEM private key nor a JWK');
}

function algorithmsFor(key: crypto.KeyObject): SigningAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? ['ES256'] : [];
    case 'ed25519':
      return ['EdDSA'];
    case 'rsa':
      return ['RS256', 'PS256'];
    default:
      return [];
  }
}

function describeKey(key: crypto.KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType ?? 'unknown'} ${curve}` : (key.asymmetricKeyType ?? 'unknown');
}
