// The checks of a token's shape that need no key: the compact form, the header (before any key is
// looked up or any signature computed), the claims' types, and jose's errors mapped to stable codes.
import { errors } from 'jose';
import { VerificationError } from './errors.js';
import type { AccessTokenClaims } from './verifier.js';

export const ASYMMETRIC = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
export const DEFAULT_ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'];
// Header members that let a token name its own verification key (RFC 8725 §3.10): a forged token
// would bring the key that verifies it.
export const KEY_CARRYING_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256'];
// Compact JWS only: three base64url segments; an empty signature is let through here so that
// `alg: none` is reported as the algorithm failure it is.
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function checkHeader(header: Record<string, unknown>, algorithms: string[]): Record<string, unknown> {
  for (const name of KEY_CARRYING_HEADERS) if (name in header) throw new VerificationError('ERR_TOKEN_MALFORMED', `the ${name} header is not accepted`);
  // nothing here understands critical extensions, so a token that demands one is refused (RFC 7515 §4.1.11)
  if ('crit' in header) throw new VerificationError('ERR_TOKEN_MALFORMED', 'the crit header is not accepted');
  if ('b64' in header) throw new VerificationError('ERR_TOKEN_MALFORMED', 'the b64 header is not accepted');
  // a nested JWT (RFC 7519 §5.2) is not an access token
  if (typeof header.cty === 'string' && ['jwt', 'application/jwt'].includes(header.cty.toLowerCase())) throw new VerificationError('ERR_TOKEN_MALFORMED', 'a nested JWT is not accepted');
  if (typeof header.alg !== 'string') throw new VerificationError('ERR_TOKEN_MALFORMED', 'alg is missing');
  if (!algorithms.includes(header.alg)) throw new VerificationError('ERR_TOKEN_ALGORITHM', 'alg is not on the allow-list');
  if (typeof header.kid !== 'string' || header.kid === '') throw new VerificationError('ERR_TOKEN_MALFORMED', 'kid is missing');
  return header;
}

export function isAccessTokenType(typ: string): boolean {
  if (typ === 'at+jwt') return true; // Tollgate's own form: no lowercasing on the common path
  const lower = typ.toLowerCase();
  return lower === 'at+jwt' || lower === 'application/at+jwt';
}

export function translate(e: unknown): VerificationError {
  if (e instanceof VerificationError) return e;
  if (e instanceof errors.JWSSignatureVerificationFailed) return new VerificationError('ERR_TOKEN_SIGNATURE', 'the signature does not verify', { cause: e });
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return new VerificationError('ERR_TOKEN_ALGORITHM', 'the algorithm is not allowed', { cause: e });
  // a key whose type or size does not fit the algorithm also means the token was not signed by it
  if (e instanceof TypeError || e instanceof errors.JWKInvalid || e instanceof errors.JWKSInvalid) return new VerificationError('ERR_TOKEN_SIGNATURE', 'the key does not verify this algorithm', { cause: e });
  return new VerificationError('ERR_TOKEN_MALFORMED', 'the token could not be parsed', { cause: e });
}

export const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeSegment(segment: string, what: string): Record<string, unknown> {
  return parseJson(Buffer.from(segment, 'base64url'), what);
}

export function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    throw new VerificationError('ERR_TOKEN_MALFORMED', `the ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new VerificationError('ERR_TOKEN_MALFORMED', `the ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export function isNumericDate(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export function isAccessTokenClaims(c: Record<string, unknown>): c is AccessTokenClaims {
  return (
    typeof c.sub === 'string' &&
    typeof c.jti === 'string' &&
    typeof c.client_id === 'string' &&
    (c.scope === undefined || typeof c.scope === 'string') &&
    (c.sid === undefined || typeof c.sid === 'string') &&
    (c.roles === undefined || (Array.isArray(c.roles) && c.roles.every((r) => typeof r === 'string')))
  );
}

export function requireString(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new TypeError(`${name} is required`);
  return v;
}
