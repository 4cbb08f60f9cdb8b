// Errors of HTTP itself (no route, a method a route lacks, an oversized body) and the rendering of
// every error as RFC 6749 §5.2 JSON. The protocol's errors are in src/oauth/errors.ts.
import { OAuthError, RequestError } from '../oauth/errors.js';

export class NotFound extends OAuthError {
  readonly error = 'not_found';
  readonly description = 'no such endpoint';
  override readonly status = 404;
}
/** 405 (or 501 for a method nothing here knows) from the router, which sets the Allow header (RFC 9110 §15.5.6). */
export class UnsupportedMethod extends OAuthError {
  readonly error = 'invalid_request';
  readonly description = 'the endpoint does not support this method';
  constructor(
    override readonly status: 405 | 501,
    detail: string,
  ) {
    super(detail);
  }
}
/** 413: the detail names the limit, which is about the request and no secret. */
export class PayloadTooLarge extends RequestError {
  readonly error = 'invalid_request';
  override readonly status = 413;
}
/** Any other 4xx thrown by Koa or the router (http-errors): a bad request, whatever its library said. */
export class BadRequest extends OAuthError {
  readonly error = 'invalid_request';
  readonly description = 'the request is malformed';
  constructor(
    override readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

/** What the HTTP layer throws and renders: an OAuthError, or an http-errors 4xx turned into one. */
export function asOAuthError(e: unknown): OAuthError | undefined {
  if (e instanceof OAuthError) return e;
  const status = (e as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return new BadRequest(status, (e as Error).message || 'bad request');
  return undefined;
}

export interface ErrorBody {
  error: string;
  error_description: string;
}

/** The answer to a failure nothing expected: no detail at all. */
export const SERVER_ERROR: ErrorBody = { error: 'server_error', error_description: 'the server met an unexpected condition' };

// RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in error_description, and a RequestError's
// description quotes the request (a grant_type, a parameter name): anything else is replaced, and
// an attacker's 16 KiB parameter name is not echoed back (or logged) whole.
const MAX_TEXT = 200;
export function safeText(text: string): string {
  const safe = text.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '?');
  return safe.length > MAX_TEXT ? `${safe.slice(0, MAX_TEXT - 3)}...` : safe;
}

export function errorBody(error: OAuthError): ErrorBody {
  return { error: error.error, error_description: safeText(error.description) };
}
