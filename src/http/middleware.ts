// Koa glue shared by every route: security headers, request logs, RFC 6749 §5.2 error bodies.
import type { Context, Next } from 'koa';
import type { Logger } from '../logger.js';
import { InvalidRequest } from '../oauth/errors.js';
import { NotFound, SERVER_ERROR, UnsupportedMethod, asOAuthError, errorBody, safeText } from './errors.js';

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

export interface RequestLine {
  method: string;
  path: string;
  status: number;
  ms: number;
  client_id?: string | undefined;
  /** A failed request's error code and its detail, which the client may not have been told (src/oauth/errors.ts). */
  error?: string | undefined;
  detail?: string | undefined;
}

/** What errorBodies leaves in ctx.state.failure for the request line. */
interface ErrorLog {
  error: string;
  detail?: string;
}

/**
 * Writes the one line per request: method, path (never the query), status, duration, client_id,
 * and for a failure its error code and private detail. These fields are fixed or written by throw
 * sites that never put a token, secret or password in a detail, so the line skips the redaction
 * pass (it cost about 15% of a JWKS request): everything else still goes through the redacting logger.
 */
export function requestLogger(logger: Logger): (line: RequestLine) => void {
  const log = logger.child({}, { redact: [] });
  return (line) => log.info(line, 'request');
}

/** Milliseconds since `start` (performance.now()), to a tenth. */
export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

export function noStore(ctx: Context): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
}

const SENSITIVE_QUERY = ['access_token', 'refresh_token', 'token', 'client_secret', 'password', 'id_token', 'code', 'assertion'];

/** Tokens and secrets never travel in a URL (RFC 6750 §2.3, RFC 9700 §4.3.2): refused on every endpoint. */
function refuseCredentialsInQuery(query: string): void {
  if (!query) return;
  for (const name of new URLSearchParams(query).keys()) if (SENSITIVE_QUERY.includes(name.toLowerCase())) throw new InvalidRequest(`${name} must not be sent in the URL`);
}

/** Turns a failure into RFC 6749 §5.2 JSON with its class's public description (src/http/errors.ts); the detail goes to the request line. */
function answerFailure(ctx: Context, e: unknown, logger: Logger): void {
  const error = asOAuthError(e);
  if (!error) {
    logger.error({ err: e, path: ctx.path }, 'unexpected error');
    ctx.status = 500;
    ctx.body = { ...SERVER_ERROR };
    ctx.state.failure = { error: SERVER_ERROR.error } satisfies ErrorLog;
  } else {
    ctx.status = error.status;
    ctx.body = errorBody(error);
    for (const [k, v] of Object.entries(error.headers)) ctx.set(k, v);
    ctx.state.failure = { error: error.error, detail: safeText(error.detail) } satisfies ErrorLog;
  }
  noStore(ctx);
}

export interface EnvelopeDeps {
  logger: Logger;
  https: boolean;
  /** Counts the request by the route that matched (http/metrics.ts). */
  metrics?: { koaRequest(method: string, matched: unknown, status: number, seconds: number): void } | undefined;
}

/**
 * What every request Koa answers goes through, as one middleware (each layer of Koa middleware
 * costs a promise and a closure per request; five of them were a tenth of an introspection):
 * - the security headers;
 * - credentials in the query string refused (RFC 6750 §2.3, RFC 9700 §4.3.2);
 * - any failure turned into RFC 6749 §5.2 JSON with its class's public description, the detail
 *   kept for the request line; an unexpected failure logged and answered 500 without details;
 * - after the status is settled: the request line (requestLogger) and the metrics.
 */
export function envelope({ logger, https, metrics }: EnvelopeDeps) {
  const headers = securityHeaderList(https);
  const write = requestLogger(logger);
  return async (ctx: Context, next: Next) => {
    const start = performance.now();
    for (const [name, value] of headers) ctx.set(name, value);
    try {
      refuseCredentialsInQuery(ctx.querystring);
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new NotFound('no route matches the path');
      // the router answers 405/501 itself, without a body, so that its Allow header (RFC 9110 §15.5.6) stays
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) throw new UnsupportedMethod(ctx.status, `${ctx.method} is not supported on ${ctx.path}`);
    } catch (e) {
      answerFailure(ctx, e, logger);
    }
    const failure = ctx.state.failure as ErrorLog | undefined;
    const status = ctx.status;
    write({ method: ctx.method, path: ctx.path, status, ms: elapsedMs(start), client_id: ctx.state.clientId as string | undefined, error: failure?.error, detail: failure?.detail });
    metrics?.koaRequest(ctx.method, (ctx as Context & { _matchedRoute?: unknown })._matchedRoute, status, (performance.now() - start) / 1000);
  };
}
