// One class per RFC error code (RFC 6749 §5.2, RFC 7009 §2.2.1): `throw new InvalidGrant('…')` is
// the whole error path; the HTTP layer turns any OAuthError into its JSON body and status.
export abstract class OAuthError extends Error {
  abstract readonly error: string;
  readonly status: number = 400;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  headers: Record<string, string> = {};
  constructor(readonly description: string) {
    super(description);
  }
  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

export class InvalidRequest extends OAuthError {
  readonly error = 'invalid_request';
}
export class InvalidClient extends OAuthError {
  readonly error = 'invalid_client';
  override readonly status = 401;
}
export class InvalidGrant extends OAuthError {
  readonly error = 'invalid_grant';
}
export class UnauthorizedClient extends OAuthError {
  readonly error = 'unauthorized_client';
}
export class UnsupportedGrantType extends OAuthError {
  readonly error = 'unsupported_grant_type';
}
export class InvalidScope extends OAuthError {
  readonly error = 'invalid_scope';
}
export class UnsupportedTokenType extends OAuthError {
  readonly error = 'unsupported_token_type';
}
/** 429: too many failed attempts; argon2 is not run. */
export class TooManyAttempts extends OAuthError {
  readonly error = 'temporarily_unavailable';
  override readonly status = 429;
  constructor(description: string, retryAfterSeconds: number) {
    super(description);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}
/** 503: the password-hashing queue is full. */
export class TemporarilyUnavailable extends OAuthError {
  readonly error = 'temporarily_unavailable';
  override readonly status = 503;
  constructor(description: string, retryAfterSeconds: number) {
    super(description);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}
export class NotFound extends OAuthError {
  readonly error = 'not_found';
  override readonly status = 404;
}
export class MethodNotAllowed extends OAuthError {
  readonly error = 'invalid_request';
  override readonly status = 405;
}
export class PayloadTooLarge extends OAuthError {
  readonly error = 'invalid_request';
  override readonly status = 413;
}
