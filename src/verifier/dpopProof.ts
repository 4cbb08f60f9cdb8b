// The checks of a DPoP proof (RFC 9449 §4.3), shared by the token endpoint (src/dpop/proof.ts) and
// the resource-server verifier (./dpop.ts). It lives here because the verifier may import nothing
// but jose and Node's built-ins; the server imports it from here. Each failed check has its own
// reason (for metrics and the error description); nothing read from the proof is ever put into a
// message. The jti replay check is the caller's: the server's is fleet-wide (a store table), a
// verifier's in memory.
import crypto from 'node:crypto';
import { type CryptoKey, type JWK, compactVerify, importJWK } from 'jose';

export type ProofFailure =
  | 'malformed' // not a compact JWS with JSON header and payload
  | 'typ' // typ is not dpop+jwt
  | 'alg' // alg missing, none, symmetric or not on the allow-list
  | 'jwk' // no usable public key in the header
  | 'private_key' // the header's jwk carries private (or symmetric) key material
  | 'signature' // the signature does not verify with that jwk
  | 'jti' // jti missing or unreasonable
  | 'htm' // htm is not the request's method
  | 'htu' // htu is not the request's URL (without query and fragment)
  | 'iat' // iat missing or outside the accepted window
  | 'nonce' // the server nonce is missing or stale (use_dpop_nonce)
  | 'ath' // ath is not the hash of the presented access token
  | 'replay' // the jti was seen before (checked by the caller)
  | 'binding'; // the proof key is not the key the token is bound to (checked by the caller)

export const PROOF_FAILURES: readonly ProofFailure[] = ['malformed', 'typ', 'alg', 'jwk', 'private_key', 'signature', 'jti', 'htm', 'htu', 'iat', 'nonce', 'ath', 'replay', 'binding'];

/** What each failure tells the client: the check that failed, never the value that failed it. */
export const PROOF_FAILURE_TEXT: Record<ProofFailure, string> = {
  malformed: 'the DPoP proof is not a well-formed JWS',
  typ: 'the DPoP proof typ is not dpop+jwt',
  alg: 'the DPoP proof alg is not an accepted asymmetric algorithm',
  jwk: 'the DPoP proof header has no usable public jwk',
  private_key: 'the DPoP proof jwk must be a public key (it carries private key members)',
  signature: 'the DPoP proof signature does not verify with its jwk',
  jti: 'the DPoP proof has no usable jti',
  htm: 'the DPoP proof htm is not the method of this request',
  htu: 'the DPoP proof htu is not the URL of this endpoint (without query and fragment)',
  iat: 'the DPoP proof iat is missing or outside the accepted window',
  nonce: 'the DPoP proof must carry the server nonce from the DPoP-Nonce header',
  ath: 'the DPoP proof ath is not the hash of the access token',
  replay: 'the DPoP proof jti was already used',
  binding: 'the DPoP proof key is not the key the token is bound to',
};

/** RFC 7518 asymmetric JWS algorithms (and Ed25519, RFC 9864): the only ones a proof may use. */
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
// RFC 7517/7518 private members (RSA, EC, OKP) and the symmetric key `k`: a proof's jwk is public
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
// proofs are a few hundred bytes (an RSA-4096 key makes ~1.5 KiB)
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface ProofExpectations {
  /** The request's method (htm). */
  method: string;
  /** The request's URL; query and fragment are ignored (htu). */
  url: string;
  algorithms: readonly string[];
  /** |now - iat| must be at most this plus toleranceSeconds. */
  maxAgeSeconds: number;
  toleranceSeconds: number;
  /** Epoch ms. */
  now: number;
  /** The presented access token: the proof must carry its hash in `ath` (resource servers). */
  accessToken?: string | undefined;
  /** When set, the proof's `nonce` (undefined when absent) must satisfy it (RFC 9449 §8, §9). */
  nonce?: ((nonce: string | undefined) => boolean) | undefined;
}

export interface CheckedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key (base64url): the `cnf.jkt` it binds to. */
  jkt: string;
  jti: string;
  /** Epoch seconds. */
  iat: number;
}

export type ProofResult = { ok: true; proof: CheckedProof } | { ok: false; reason: ProofFailure };

const fail = (reason: ProofFailure): ProofResult => ({ ok: false, reason });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function jsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 9449 §4.3 steps 2–12 except the jti replay check. Never throws for a bad proof. */
export async function checkProof(proof: string, expect: ProofExpectations): Promise<ProofResult> {
  if (typeof proof !== 'string' || proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof)) return fail('malformed');
  const header = jsonObject(Buffer.from(proof.slice(0, proof.indexOf('.')), 'base64url'));
  if (!header) return fail('malformed');
  // §4.2: the media type, compared case-insensitively (RFC 2045)
  if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'dpop+jwt') return fail('typ');
  // the alg comes from the proof but must be on our list: `none` and HMAC (where the "public key"
  // would be the secret) never are
  const alg = header.alg;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg) || !expect.algorithms.includes(alg)) return fail('alg');
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return fail('jwk');
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) return fail('private_key');
  if (typeof (jwk as JWK).kty !== 'string') return fail('jwk');
  // a crit header names extensions nothing here implements (RFC 7515 §4.1.11)
  if ('crit' in header || 'b64' in header) return fail('malformed');

  const jkt = thumbprint(jwk as JWK);
  if (jkt === undefined) return fail('jwk');
  let payloadBytes: Uint8Array;
  try {
    const key = await publicKey(jkt, jwk as JWK, alg);
    if (key === undefined) return fail('jwk');
    ({ payload: payloadBytes } = await compactVerify(proof, key, { algorithms: [alg] }));
  } catch (e) {
    // a jwk that is not a key of the algorithm's type is no usable key; anything else failed to verify
    return fail(e instanceof TypeError || (e as { code?: string }).code === 'ERR_JWK_INVALID' || (e as { code?: string }).code === 'ERR_JOSE_NOT_SUPPORTED' ? 'jwk' : 'signature');
  }
  const claims = jsonObject(payloadBytes);
  if (!claims) return fail('malformed');
  const { jti, htm, htu, iat } = claims;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) return fail('jti');
  if (htm !== expect.method) return fail('htm');
  if (typeof htu !== 'string' || !sameTarget(htu, expect.url)) return fail('htu');
  const nowSeconds = expect.now / 1000;
  if (typeof iat !== 'number' || !Number.isFinite(iat) || Math.abs(nowSeconds - iat) > expect.maxAgeSeconds + expect.toleranceSeconds) return fail('iat');
  if (expect.accessToken !== undefined && claims.ath !== accessTokenHash(expect.accessToken)) return fail('ath');
  if (expect.nonce && !expect.nonce(typeof claims.nonce === 'string' ? claims.nonce : undefined)) return fail('nonce');
  return { ok: true, proof: { jkt, jti, iat } };
}

// RFC 7638 §3.2: the members that define a public key, per key type, in lexicographic order
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };

/**
 * The RFC 7638 SHA-256 thumbprint (base64url), as jose's calculateJwkThumbprint computes it but
 * synchronously: it is also the key of the import cache below, so it is computed first.
 */
export function thumbprint(jwk: JWK): string | undefined {
  const members = typeof jwk.kty === 'string' ? THUMBPRINT_MEMBERS[jwk.kty] : undefined;
  if (!members) return undefined;
  const canonical: Record<string, string> = {};
  for (const m of members) {
    const v = (jwk as Record<string, unknown>)[m];
    if (typeof v !== 'string' || v === '') return undefined;
    canonical[m] = v;
  }
  return crypto.createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

// Importing a JWK costs more than verifying a signature with it, and a client signs all its proofs
// with one key: imported keys are kept by thumbprint and algorithm (the thumbprint covers every
// member that defines the key, so equal thumbprints are the same key). Bounded; oldest out first.
const KEY_CACHE_MAX = 1000;
const keyCache = new Map<string, CryptoKey>();

async function publicKey(jkt: string, jwk: JWK, alg: string): Promise<CryptoKey | undefined> {
  const id = `${alg} ${jkt}`;
  const hit = keyCache.get(id);
  if (hit) return hit;
  const key = await importJWK(jwk, alg);
  if (key instanceof Uint8Array || key.type !== 'public') return undefined;
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(id, key);
  return key;
}

/** `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(token: string): string {
  return crypto.createHash('sha256').update(token, 'ascii').digest('base64url');
}

/**
 * §4.3 step 9: htu matches the request URL "ignoring any query and fragment", after RFC 3986
 * §6.2.2 syntax-based normalisation (case of scheme and host, percent-encoding, dot segments) and
 * §6.2.3 scheme-based normalisation (the default port, an empty path as "/"). A proof's htu must
 * itself have neither: RFC 9449 §4.2 defines it "without query and fragment parts".
 */
export function sameTarget(htu: string, requestUrl: string): boolean {
  const proofTarget = normalise(htu, false);
  const requestTarget = normalise(requestUrl, true);
  return proofTarget !== undefined && proofTarget === requestTarget;
}

function normalise(text: string, dropQuery: boolean): string | undefined {
  if (!URL.canParse(text)) return undefined;
  // WHATWG URL lower-cases scheme and host, drops the default port, resolves dot segments and
  // turns an empty path into "/"
  const url = new URL(text);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  if (!dropQuery && (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#'))) return undefined;
  // §6.2.2.1/6.2.2.2: percent-encodings in upper case, unreserved characters decoded
  const path = url.pathname.replace(/%([0-9a-fA-F]{2})/g, (m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : m.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}
