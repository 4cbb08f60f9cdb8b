// requireToken: RFC 6750 bearer-token protection as a plain `(ctx, next)` function that Koa (or
// anything shaped like it) can mount. It reads the token only from the Authorization header.
// Nothing from the request or the token goes into a response header: the descriptions are fixed
// texts per error code (a token whose `alg` held CR LF once made the challenge itself throw).
import { type VerificationErrorCode, isUnavailable, isVerificationError } from './errors.js';
import type { AccessTokenClaims, Verifier } from './verifier.js';

/** The part of a Koa context this middleware uses. */
export interface BearerContext {
  get(field: string): string;
  set(field: string, value: string): void;
  querystring: string;
  status: number;
  body: unknown;
  state: object;
}

export interface RequireTokenOptions {
  /** Scopes the token must all carry (space-separated or a list). */
  scope?: string | string[];
  /** Roles the token's `roles` claim must all include. */
  roles?: string[];
  /** The realm named in WWW-Authenticate (default: the verifier's audience). */
  realm?: string;
}

/** What a request that passed carries in ctx.state. */
export interface TokenState {
  claims: AccessTokenClaims;
  token: string;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const QUERY_CREDENTIALS = ['access_token', 'token', 'id_token'];

/** error_description per code: fixed, so a token cannot choose what the challenge says. */
const DESCRIPTIONS: Partial<Record<VerificationErrorCode, string>> = {
  ERR_TOKEN_MALFORMED: 'the access token is malformed',
  ERR_TOKEN_SIGNATURE: 'the access token signature does not verify',
  ERR_TOKEN_ALGORITHM: 'the access token algorithm is not accepted',
  ERR_TOKEN_TYPE: 'the token is not an access token',
  ERR_TOKEN_ISSUER: 'the access token is from another issuer',
  ERR_TOKEN_AUDIENCE: 'the access token is not for this API',
  ERR_TOKEN_EXPIRED: 'the access token has expired',
  ERR_TOKEN_NOT_YET_VALID: 'the access token is not valid yet',
  ERR_TOKEN_REVOKED: 'the token has been revoked',
};
const INVALID_TOKEN = 'the access token is invalid';

// RFC 6750 §3: error_description and scope values exclude '"' and '\' outright; the realm is a
// quoted-string (RFC 9110 §5.6.4), limited here to printable ASCII with '"' and '\' escaped.
// Configured texts (realm, roles, scopes) are filtered too: a header value that Node refuses
// would turn the refusal into a 500.
const rfc6750Text = (v: string) => v.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
const realmText = (v: string) => v.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, '\\$&');

function challengeParam(name: string, value: string): string {
  return `${name}="${name === 'realm' ? realmText(value) : rfc6750Text(value)}"`;
}

export function requireToken(verifier: Verifier, options: RequireTokenOptions = {}) {
  const scopes = typeof options.scope === 'string' ? options.scope.split(' ').filter(Boolean) : (options.scope ?? []);
  const roles = options.roles ?? [];
  const realm = options.realm ?? (Array.isArray(verifier.audience) ? (verifier.audience[0] ?? 'api') : verifier.audience);

  const challenge = (params: Record<string, string>) =>
    `Bearer ${Object.entries({ realm, ...params })
      .map(([k, v]) => challengeParam(k, v))
      .join(', ')}`;

  const refuse = (ctx: BearerContext, status: number, params: Record<string, string>) => {
    ctx.status = status;
    ctx.set('WWW-Authenticate', challenge(params));
    ctx.set('Cache-Control', 'no-store');
    // RFC 6750 §3.1: a request without credentials gets no error information at all, in the
    // challenge as in the body (which is left to the framework: Koa writes the status text)
    if (params.error) ctx.body = { error: params.error, error_description: rfc6750Text(params.error_description ?? '') };
  };

  return async function bearerToken(ctx: BearerContext, next: () => Promise<unknown>): Promise<void> {
    // RFC 6750 §2.3 allows tokens in the URI; RFC 9700 §4.3.2 forbids them: URLs end up in logs
    if (ctx.querystring) {
      for (const name of new URLSearchParams(ctx.querystring).keys()) {
        if (QUERY_CREDENTIALS.includes(name.toLowerCase())) return refuse(ctx, 400, { error: 'invalid_request', error_description: 'tokens are not accepted in the URL; use the Authorization header' });
      }
    }
    const authorization = ctx.get('authorization');
    // §3: a request without authentication gets a challenge without an error code
    if (!authorization || !/^Bearer(\s|$)/i.test(authorization)) return refuse(ctx, 401, {});
    const token = BEARER.exec(authorization)?.[1];
    if (!token) return refuse(ctx, 401, { error: 'invalid_token', error_description: 'the Authorization header is not a bearer token' });

    let claims: AccessTokenClaims;
    try {
      claims = await verifier.verify(token);
    } catch (e) {
      if (!isVerificationError(e)) throw e;
      if (isUnavailable(e.code)) {
        // not the token's fault: a 401 would send the client off to refresh for nothing
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the access token cannot be checked right now' };
        return;
      }
      return refuse(ctx, 401, { error: 'invalid_token', error_description: DESCRIPTIONS[e.code] ?? INVALID_TOKEN });
    }

    const granted = new Set((claims.scope ?? '').split(' ').filter(Boolean));
    const missingScope = scopes.filter((s) => !granted.has(s));
    const held = new Set(claims.roles ?? []);
    const missingRoles = roles.filter((r) => !held.has(r));
    if (missingScope.length > 0 || missingRoles.length > 0) {
      const params: Record<string, string> = {
        error: 'insufficient_scope',
        error_description: missingRoles.length > 0 ? `requires the role ${missingRoles.join(', ')}` : `requires the scope ${missingScope.join(' ')}`,
      };
      if (scopes.length > 0) params.scope = scopes.join(' ');
      return refuse(ctx, 403, params);
    }

    const state: TokenState = { claims, token };
    Object.assign(ctx.state, state);
    await next();
  };
}
