// Hand-made DPoP proofs for the negative cases outside libraries refuse to produce (HS256, none, a
// private key in the header, an old iat). The positive paths use `dpop` and `oauth4webapi` instead.
import crypto from 'node:crypto';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';

export interface ProofKey {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

export interface ProofSpec {
  htm?: string;
  htu: string;
  /** Epoch seconds (default: now from the given clock). */
  iat: number;
  jti?: string;
  nonce?: string;
  ath?: string;
  /** Header overrides (typ, alg, jwk). */
  header?: Record<string, unknown>;
  /** Claims to drop. */
  omit?: string[];
}

export async function signProof(key: ProofKey, spec: ProofSpec): Promise<string> {
  const claims: Record<string, unknown> = { htm: spec.htm ?? 'POST', htu: spec.htu, iat: spec.iat, jti: spec.jti ?? crypto.randomUUID() };
  if (spec.nonce !== undefined) claims.nonce = spec.nonce;
  if (spec.ath !== undefined) claims.ath = spec.ath;
  for (const k of spec.omit ?? []) delete claims[k];
  const header = { typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...spec.header };
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** A JWS with `alg: none` (no signature). */
export function unsignedProof(key: ProofKey, spec: ProofSpec): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ typ: 'dpop+jwt', alg: 'none', jwk: key.publicJwk })}.${enc({ htm: spec.htm ?? 'POST', htu: spec.htu, iat: spec.iat, jti: crypto.randomUUID() })}.`;
}

/** An HS256 proof whose "jwk" is the symmetric key that signed it. */
export async function hmacProof(spec: ProofSpec): Promise<string> {
  const secret = crypto.randomBytes(32);
  const jwk = { kty: 'oct', k: secret.toString('base64url') };
  return new SignJWT({ htm: spec.htm ?? 'POST', htu: spec.htu, iat: spec.iat, jti: crypto.randomUUID() }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk } as { alg: string }).sign(secret);
}

export const ath = (token: string) => crypto.createHash('sha256').update(token).digest('base64url');
