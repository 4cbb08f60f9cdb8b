// requireToken: RFC 6750 bearer-token protection as a plain `(ctx, next)` function that Koa (or
// anything shaped like it) can mount. It reads the token only from the Authorization header.
// Nothing from the request or the token goes into a response header: the descriptions are fixed
// texts per error code (a token whose `alg` held CR LF once made the challenge itself throw).
import { PROOF_FAILURE_TEXT } from './dpopProof.js';
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
  /**
   * For DPoP (htm, htu): the request's method, path, protocol and host (Koa has them; Koa 3's
   * `origin` is the Origin request header, which the client chooses, so it is not used).
   */
  method?: string;
  path?: string;
  protocol?: string;
  host?: string;
}

export interface RequireTokenOptions {
  /** Scopes the token must all carry (space-separated or a list). */
  scope?: string | string[];
  /** Roles the token's `roles` claim must all include. */
  roles?: string[];
  /** The realm named in WWW-Authenticate (default: the verifier's audience). */
  realm?: string;
  /**
   * The API's public base URL (e.g. https://api.example.com), for a DPoP proof's htu behind a
   * proxy: htu must be this plus the request path. Default: the request's own origin.
   */
  publicUrl?: string;
}

/** What a request that passed carries in ctx.state. */
export interface TokenState {
  claims: AccessTokenClaims;
  token: string;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
// RFC 9449 §7.1: the DPoP scheme with the same token68 syntax
const DPOP = /^DPoP +([A-Za-z0-9\-._~+/]+=*) *$/i;
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
  ERR_DPOP_BINDING: 'the access token is DPoP-bound: present it with the DPoP scheme and a proof of its key',
};
const DPOP_CODES: readonly VerificationErrorCode[] = ['ERR_DPOP_PROOF', 'ERR_DPOP_BINDING', 'ERR_DPOP_REPLAY'];
// the verifier's DPoP messages say which check failed; only these known fixed texts are passed on
const DPOP_TEXTS = new Set([...Object.values(PROOF_FAILURE_TEXT), 'a DPoP proof is required', 'the access token is not DPoP-bound']);
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

/** htu of this request (RFC 9449 §4.2): the public base URL, or the request's origin, plus the path. */
function requestUrl(ctx: BearerContext, publicUrl: string | undefined): string {
  if (ctx.path === undefined || (publicUrl === undefined && (ctx.protocol === undefined || ctx.host === undefined))) throw new TypeError('requireToken needs ctx.path, ctx.protocol and ctx.host (or the publicUrl option) for DPoP');
  return `${(publicUrl ?? `${ctx.protocol}://${ctx.host}`).replace(/\/+$/, '')}${ctx.path}`;
}

export function requireToken(verifier: Verifier, options: RequireTokenOptions = {}) {
  const scopes = typeof options.scope === 'string' ? options.scope.split(' ').filter(Boolean) : (options.scope ?? []);
  const roles = options.roles ?? [];
  const realm = options.realm ?? (Array.isArray(verifier.audience) ? (verifier.audience[0] ?? 'api') : verifier.audience);

  const publicUrl = options.publicUrl;
  if (publicUrl !== undefined && !URL.canParse(publicUrl)) throw new TypeError('publicUrl must be an absolute URL');
  // RFC 9449 §7.1: a DPoP challenge names the proof algorithms accepted
  const algs = (verifier.dpopAlgorithms ?? []).join(' ');
  const challenge = (params: Record<string, string>, scheme: 'Bearer' | 'DPoP') =>
    `${scheme} ${Object.entries(scheme === 'DPoP' && algs ? { realm, ...params, algs } : { realm, ...params })
      .map(([k, v]) => challengeParam(k, v))
      .join(', ')}`;

  const refuse = (ctx: BearerContext, status: number, params: Record<string, string>, scheme: 'Bearer' | 'DPoP' = 'Bearer') => {
    ctx.status = status;
    ctx.set('WWW-Authenticate', challenge(params, scheme));
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
    const dpopScheme = /^DPoP(\s|$)/i.test(authorization);
    const scheme = dpopScheme ? 'DPoP' : 'Bearer';
    // §3: a request without authentication gets a challenge without an error code
    if (!authorization || (!dpopScheme && !/^Bearer(\s|$)/i.test(authorization))) return refuse(ctx, 401, {});
    const token = (dpopScheme ? DPOP : BEARER).exec(authorization)?.[1];
    if (!token) return refuse(ctx, 401, { error: 'invalid_token', error_description: `the Authorization header is not a ${scheme} token` }, scheme);

    let claims: AccessTokenClaims;
    try {
      if (dpopScheme) {
        // RFC 9449 §4.3 step 1: exactly one DPoP header (Node joins repeated ones with ", ", which
        // no JWS contains)
        const proof = ctx.get('dpop');
        if (!proof) return refuse(ctx, 401, { error: 'invalid_dpop_proof', error_description: 'a DPoP proof is required' }, 'DPoP');
        if (proof.includes(',')) return refuse(ctx, 401, { error: 'invalid_dpop_proof', error_description: 'exactly one DPoP header is allowed' }, 'DPoP');
        claims = await verifier.verify(token, { dpop: { proof, method: ctx.method ?? '', url: requestUrl(ctx, publicUrl) } });
      } else {
        claims = await verifier.verify(token);
      }
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
      if (DPOP_CODES.includes(e.code)) {
        // a proof that fails is invalid_dpop_proof; a token whose binding does not hold is invalid_token
        // (RFC 9449 §7.1), answered with the DPoP scheme either way. The message is a fixed text per check.
        const error = e.code === 'ERR_DPOP_BINDING' ? 'invalid_token' : 'invalid_dpop_proof';
        const text = e.code === 'ERR_DPOP_BINDING' && !dpopScheme ? DESCRIPTIONS.ERR_DPOP_BINDING : DPOP_TEXTS.has(e.message) ? e.message : undefined;
        return refuse(ctx, 401, { error, error_description: text ?? 'the DPoP proof or binding is invalid' }, 'DPoP');
      }
      return refuse(ctx, 401, { error: 'invalid_token', error_description: DESCRIPTIONS[e.code] ?? INVALID_TOKEN }, scheme);
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
      return refuse(ctx, 403, params, scheme);
    }

    const state: TokenState = { claims, token };
    Object.assign(ctx.state, state);
    await next();
  };
}
