// One class per RFC error code (RFC 6749 §5.2, RFC 7009 §2.2.1): `throw new InvalidGrant('…')` is
// the whole error path; the HTTP layer (src/http/errors.ts) turns any OAuthError into its JSON body
// and status. As in node-oidc-provider, what a throw site writes is the *detail*: it goes to the
// request log only. The client is told a fixed description per class, so an answer never says
// whether an account exists or is disabled, or whose refresh token it was. Only errors about the
// request itself (RequestError) tell the client their detail.
export abstract class OAuthError extends Error {
  abstract readonly error: string;
  /** RFC 6749 §5.2 `error_description`: what the client is told. */
  abstract readonly description: string;
  readonly status: number = 400;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  readonly headers: Record<string, string> = {};
  /** What went wrong, for the log only: it may name the state of an account, a client or a token family. Never a token or secret. */
  constructor(readonly detail: string) {
    super(detail);
  }
}

/**
 * An error about what the client sent (a parameter missing, repeated or malformed; a grant type or
 * scope this server or client lacks): its detail says which part of the request is wrong, so the
 * client is told it. A detail of one names parts of the request only, never stored state.
 */
export abstract class RequestError extends OAuthError {
  get description(): string {
    return this.detail;
  }
}

export class InvalidRequest extends RequestError {
  readonly error = 'invalid_request';
}
export class UnsupportedGrantType extends RequestError {
  readonly error = 'unsupported_grant_type';
}
export class InvalidScope extends RequestError {
  readonly error = 'invalid_scope';
}

/** Why authentication failed (no credentials, a malformed header, a wrong secret, a public client) stays in the log. */
export class InvalidClient extends OAuthError {
  readonly error = 'invalid_client';
  readonly description = 'client authentication failed';
  override readonly status = 401;
}
/**
 * One answer for a wrong password, an unknown or disabled user, and a refresh token that is
 * unknown, expired, revoked, replayed or another client's (RFC 6749 §5.2): telling them apart
 * would tell a guesser which accounts exist and a thief which tokens are still worth stealing.
 */
export class InvalidGrant extends OAuthError {
  readonly error = 'invalid_grant';
  readonly description = 'the username or password is wrong, or the refresh token is invalid, expired or revoked';
}
export class UnauthorizedClient extends OAuthError {
  readonly error = 'unauthorized_client';
  readonly description = 'the client is not allowed to use this grant type';
}
export class UnsupportedTokenType extends OAuthError {
  readonly error = 'unsupported_token_type';
  readonly description = 'this server revokes only its own access_token and refresh_token types';
}
/** 429: too many failed attempts; argon2 is not run. */
export class TooManyAttempts extends OAuthError {
  readonly error = 'temporarily_unavailable';
  readonly description = 'too many failed sign-in attempts; try again later';
  override readonly status = 429;
  constructor(detail: string, retryAfterSeconds: number) {
    super(detail);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}
/** 503: the password-hashing queue is full. */
export class TemporarilyUnavailable extends OAuthError {
  readonly error = 'temporarily_unavailable';
  readonly description = 'the server is busy; try again shortly';
  override readonly status = 503;
  constructor(detail: string, retryAfterSeconds: number) {
    super(detail);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}
/**
 * RFC 9449 §5/§7: a DPoP proof is missing where required, repeated, or fails a check. Its detail
 * names the check that failed (never a value from the proof), so the client is told it.
 */
export class InvalidDpopProof extends RequestError {
  readonly error = 'invalid_dpop_proof';
}
/** RFC 9449 §8: the proof must carry the server's current nonce, sent along in DPoP-Nonce. */
export class UseDpopNonce extends RequestError {
  readonly error = 'use_dpop_nonce';
  constructor(detail: string, nonce: string) {
    super(detail);
    this.headers['DPoP-Nonce'] = nonce;
  }
}
