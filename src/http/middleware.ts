// Koa glue shared by every route: security headers, request logs, RFC 6749 §5.2 error bodies.
import type { Context, Next } from 'koa';
import type { Logger } from '../logger.js';
import { InvalidRequest, OAuthError } from '../oauth/errors.js';

/** The headers every response carries, as [name, value] pairs (HSTS when the issuer is https). */
export function securityHeaderList(https: boolean): ReadonlyArray<readonly [string, string]> {
  return [
    ['X-Content-Type-Options', 'nosniff'],
    ['Referrer-Policy', 'no-referrer'],
    ['X-Frame-Options', 'DENY'],
    ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ...(https ? [['Strict-Transport-Security', 'max-age=31536000'] as const] : []),
  ];
}

export function securityHeaders(https: boolean) {
  const headers = securityHeaderList(https);
  return async (ctx: Context, next: Next) => {
    for (const [name, value] of headers) ctx.set(name, value);
    await next();
  };
}

export interface RequestLine {
  method: string;
  path: string;
  status: number;
  ms: number;
  client_id?: string | undefined;
}

/**
 * Writes the one line per request: method, path (never the query), status, duration, client_id.
 * These five fields are fixed and never secret, so the line skips the redaction pass (it cost about
 * 15% of a JWKS request): everything else still goes through the redacting logger.
 */
export function requestLogger(logger: Logger): (line: RequestLine) => void {
  const log = logger.child({}, { redact: [] });
  return (line) => log.info(line, 'request');
}

/** Milliseconds since `start` (performance.now()), to a tenth. */
export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/** One line per request (see requestLogger). */
export function requestLog(logger: Logger) {
  const write = requestLogger(logger);
  return async (ctx: Context, next: Next) => {
    const start = performance.now();
    try {
      await next();
    } finally {
      write({ method: ctx.method, path: ctx.path, status: ctx.status, ms: elapsedMs(start), client_id: ctx.state.clientId as string | undefined });
    }
  };
}

export function noStore(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
}

/** Turns any failure into RFC 6749 §5.2 JSON; an unexpected one is logged and answered 500 without details. */
export function errorBodies(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new NotFoundError();
      // the router answers 405/501 itself, without a body, so that its Allow header (RFC 9110 §15.5.6) stays
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) throw Object.assign(new InvalidRequest(`${ctx.method} is not supported on ${ctx.path}`), { status: ctx.status });
    } catch (e) {
      const error = toOAuthError(e);
      if (!error) {
        logger.error({ err: e, path: ctx.path }, 'unexpected error');
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'the server met an unexpected condition' };
      } else {
        ctx.status = error.status;
        ctx.body = wireError(error);
        for (const [k, v] of Object.entries(error.headers)) ctx.set(k, v);
      }
      noStore(ctx);
    }
  };
}

// RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in error_description, and descriptions
// may quote the request (a grant_type, a parameter name): anything else is replaced, and an
// attacker's 16 KiB parameter name is not echoed back whole.
const MAX_DESCRIPTION = 200;
function wireError(error: OAuthError): { error: string; error_description: string } {
  const { error: code, error_description } = error.toJSON();
  const safe = error_description.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '?');
  return { error: code, error_description: safe.length > MAX_DESCRIPTION ? `${safe.slice(0, MAX_DESCRIPTION - 3)}...` : safe };
}

class NotFoundError extends OAuthError {
  readonly error = 'not_found';
  override readonly status = 404;
  constructor() {
    super('no such endpoint');
  }
}

function toOAuthError(e: unknown): OAuthError | undefined {
  if (e instanceof OAuthError) return e;
  // http-errors from Koa and the router (405, 501, a bad Content-Length, an aborted request)
  const status = (e as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const err = new InvalidRequest((e as Error).message || 'bad request');
    return Object.assign(err, { status });
  }
  return undefined;
}

const SENSITIVE_QUERY = ['access_token', 'refresh_token', 'token', 'client_secret', 'password', 'id_token', 'code', 'assertion'];

/** Tokens and secrets never travel in a URL (RFC 6750 §2.3, RFC 9700 §4.3.2): refused on every endpoint. */
export function refuseCredentialsInQuery() {
  return async (ctx: Context, next: Next) => {
    const query = ctx.querystring;
    if (query) {
      const names = new URLSearchParams(query).keys();
      for (const name of names) if (SENSITIVE_QUERY.includes(name.toLowerCase())) throw new InvalidRequest(`${name} must not be sent in the URL`);
    }
    await next();
  };
}
