// What a signing key is: its algorithm, its public JWK as published, its states, and how a stored
// key's private half is opened (decrypted under the key-encryption key, imported for signing).
import crypto from 'node:crypto';
import { type CryptoKey, type JWK, importJWK } from 'jose';
import { ALGORITHMS, type SigningAlgorithm } from '../config.js';
import type { KeyState, SigningKeyRow } from '../store/schema.js';
import { decryptPrivateKey } from './encryption.js';
import { JwsSigner, signsWith } from './jws.js';

export { ALGORITHMS, type SigningAlgorithm };

/** States whose public key is in the JWKS: tokens they signed still verify. */
export const PUBLISHED_STATES: readonly KeyState[] = ['next', 'active', 'retired'];

export interface PublicJwk extends JWK {
  kid: string;
  alg: string;
  use: 'sig';
}

/** A key pair as generated or imported, kid = RFC 7638 thumbprint of the public key. */
export interface JwkPair {
  publicJwk: PublicJwk;
  privateJwk: JWK;
}

export interface ActiveKey {
  kid: string;
  alg: SigningAlgorithm;
  /** The WebCrypto handle on the private key, for jose. */
  privateKey: CryptoKey;
  /** Signs Tollgate's own tokens through node:crypto (jws.ts). */
  signer: JwsSigner;
}

export interface VerificationKey {
  kid: string;
  alg: SigningAlgorithm;
  key: CryptoKey;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

export function isAlgorithm(alg: string): alg is SigningAlgorithm {
  return (ALGORITHMS as readonly string[]).includes(alg);
}

/** A stored key's private half, ready to sign; throws KeyEncryptionError under a wrong KEK. */
export async function importActive(kek: Buffer, row: SigningKeyRow): Promise<ActiveKey> {
  if (!isAlgorithm(row.alg)) throw new KeyError(`key ${row.kid} has an unsupported alg ${row.alg}`);
  const jwk = JSON.parse(decryptPrivateKey(kek, row.kid, row.private_jwk_enc)) as JWK;
  const privateKey = (await importJWK(jwk, row.alg)) as CryptoKey;
  const keyObject = crypto.createPrivateKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
  if (!signsWith(row.alg, keyObject)) throw new KeyError(`key ${row.kid} is not a ${row.alg} private key`);
  return { kid: row.kid, alg: row.alg, privateKey, signer: new JwsSigner(row.kid, row.alg, keyObject) };
}
