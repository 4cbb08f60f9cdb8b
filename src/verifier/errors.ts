// One error class with a stable `code` per failed check, so callers branch on the code, never on
// the message (the jose convention).

export const VERIFICATION_ERROR_CODES = [
  'ERR_TOKEN_MALFORMED',
  'ERR_TOKEN_SIGNATURE',
  'ERR_TOKEN_ALGORITHM',
  'ERR_TOKEN_TYPE',
  'ERR_TOKEN_ISSUER',
  'ERR_TOKEN_AUDIENCE',
  'ERR_TOKEN_EXPIRED',
  'ERR_TOKEN_NOT_YET_VALID',
  'ERR_TOKEN_REVOKED',
  'ERR_DENY_LIST_UNAVAILABLE',
  // the issuer's JWK Set could not be fetched: the token may be fine, the verifier cannot tell
  'ERR_JWKS_UNAVAILABLE',
  // the token's Token Status List could not be fetched or verified within maxStaleness: fail closed
  'ERR_STATUS_LIST_UNAVAILABLE',
  // RFC 9449: the DPoP proof fails a check; the token is DPoP-bound and no proof (or a proof of
  // another key) came with it, or an unbound token came as DPoP; the proof's jti was seen before
  'ERR_DPOP_PROOF',
  'ERR_DPOP_BINDING',
  'ERR_DPOP_REPLAY',
] as const;

export type VerificationErrorCode = (typeof VERIFICATION_ERROR_CODES)[number];

export class VerificationError extends Error {
  override name = 'VerificationError';
  constructor(
    readonly code: VerificationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for a VerificationError from any copy of this module (a bundled and a built one may coexist). */
export function isVerificationError(e: unknown): e is VerificationError {
  if (e instanceof VerificationError) return true;
  if (!(e instanceof Error) || e.name !== 'VerificationError') return false;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (VERIFICATION_ERROR_CODES as readonly string[]).includes(code);
}

/** The failure is the verifier's (it could not reach the issuer), not the token's. */
export function isUnavailable(code: VerificationErrorCode): boolean {
  return code === 'ERR_DENY_LIST_UNAVAILABLE' || code === 'ERR_JWKS_UNAVAILABLE' || code === 'ERR_STATUS_LIST_UNAVAILABLE';
}
