// createVerifier: what a resource server runs on every request. Checks in a fixed order, each
// mapped to one error code: size and shape, then the header (before any key is looked up or any
// signature computed), the signature with a key from the issuer's JWK Set, then typ, iss, aud,
// exp/nbf, and last the deny list kept in memory from Tollgate's feed. Messages are fixed texts:
// nothing read from the token is reflected into them (they end up in logs and responses).
import { type JWTPayload, type JWTVerifyGetKey, compactVerify, errors } from 'jose';
import { DenyListMirror, type DenyListOptions } from './denyList.js';
import { DpopChecker, type DpopOptions, type DpopRequest, boundKey } from './dpop.js';
import { VerificationError } from './errors.js';
import { JwksCache } from './jwks.js';
import { StatusListChecker, type StatusListOptions } from './statusList.js';
import { TokenCache, type TokenCacheOptions, deepFreeze } from './tokenCache.js';
import { ASYMMETRIC, DEFAULT_ALGORITHMS, COMPACT_JWS, checkHeader, isAccessTokenType, translate, decodeSegment, parseJson, isNumericDate, isAccessTokenClaims, requireString } from './tokenChecks.js';

export interface VerifierOptions {
  /** The expected `iss`; the JWK Set defaults to `${issuer}/.well-known/jwks.json`. */
  issuer: string;
  /** The expected `aud`: a token is accepted when its aud names this (or any one of these). */
  audience: string | string[];
  jwksUri?: string;
  /** The accepted signature algorithms (asymmetric only). Default ES256, EdDSA, RS256, PS256. */
  algorithms?: string[];
  /** Seconds of leeway for exp/nbf/iat (default 5). */
  clockTolerance?: number;
  denyList?: DenyListOptions;
  /** Check each token's Token Status List entry (draft-ietf-oauth-status-list), failing closed past maxStaleness. */
  statusList?: StatusListOptions;
  /** DPoP-bound tokens (RFC 9449): how proofs are checked. Without it, the defaults of DpopOptions. */
  dpop?: DpopOptions;
  /**
   * Keep verified tokens (by the token string) so a token seen again skips the signature check;
   * exp/nbf, the deny list, the status list and DPoP proofs are still checked on every call, and a
   * cached token counts only while its key is in the JWK Set. Off by default; with it, the claims
   * verify() returns are frozen (the same object on every hit).
   */
  cache?: TokenCacheOptions;
}

export interface VerifyOptions {
  /** The request's DPoP proof, method and URL: the token must be DPoP-bound to the proof's key. */
  dpop?: DpopRequest;
}

/** RFC 9068 §2.2 claims, plus Tollgate's `roles` and `sid`. */
export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  roles?: string[];
  sid?: string;
  /** RFC 9449 §6.1: the key a DPoP-bound token is bound to. */
  cnf?: { jkt?: string };
}

export interface Verifier {
  readonly issuer: string;
  readonly audience: string | string[];
  /** Resolves once the JWK Set and the deny list are loaded; rejects if loading them fails. */
  ready(): Promise<void>;
  /**
   * The claims of an acceptable access token; anything else throws a VerificationError. A
   * DPoP-bound token is acceptable only with `options.dpop` (a proof of its key); a token given
   * with `options.dpop` must be DPoP-bound.
   */
  verify(token: string, options?: VerifyOptions): Promise<AccessTokenClaims>;
  /** The DPoP proof algorithms accepted (for the `algs` of a DPoP challenge). */
  readonly dpopAlgorithms?: readonly string[];
  /** Stops the deny-list stream and every timer. */
  close(): void;
}

/** Tokens are well under 2 KiB; a longer string is refused before any decoding. */
export const MAX_TOKEN_LENGTH = 8192;
export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = requireString(options.issuer, 'issuer');
  const audiences = typeof options.audience === 'string' ? [options.audience] : Array.isArray(options.audience) ? options.audience : [];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) throw new TypeError('audience must be a non-empty string or array of strings');
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  // HS256 "verified" with the issuer's public key as the HMAC secret is the classic forgery
  // (RFC 8725 §2.1): symmetric algorithms cannot even be configured
  for (const alg of algorithms) if (!ASYMMETRIC.includes(alg)) throw new TypeError(`algorithm ${alg} is not allowed (one of ${ASYMMETRIC.join(', ')})`);
  if (algorithms.length === 0) throw new TypeError('algorithms must name at least one algorithm');
  const tolerance = options.clockTolerance ?? 5;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('clockTolerance must be a non-negative number of seconds');
  const jwksUri = new URL(options.jwksUri ?? `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`);

  const now = () => Date.now();
  let denyList: DenyListMirror | undefined;
  // a kid entry on the feed drops its key from the set at once, and keeps it out of later fetches
  const jwks = new JwksCache({ uri: jwksUri, now, isDenied: (kid) => denyList?.isKidDenied(kid) ?? false });
  const dpop = new DpopChecker(options.dpop ?? {}, { now, toleranceSeconds: tolerance });
  if (options.denyList) denyList = new DenyListMirror(options.denyList, { now, clockToleranceSeconds: tolerance, onKidDenied: (kid) => jwks.drop(kid) });

  // jose's key lookup errors, translated: a kid the issuer does not publish is a bad signature; an
  // unreachable JWK Set is the verifier's problem, not the token's
  const getKey: JWTVerifyGetKey = async (header, token) => {
    // a removed key is revoked, not merely unknown: say so, and do not refetch the set for it
    if (denyList?.isKidDenied(header.kid)) throw new VerificationError('ERR_TOKEN_REVOKED', 'the key that signed the token has been removed');
    try {
      return await jwks.getKey(header, token);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw new VerificationError('ERR_TOKEN_SIGNATURE', 'no single key of the issuer has this kid', { cause: e });
      if (e instanceof errors.JOSENotSupported) throw new VerificationError('ERR_TOKEN_ALGORITHM', 'the algorithm is not supported', { cause: e });
      throw new VerificationError('ERR_JWKS_UNAVAILABLE', "the issuer's JWK Set could not be loaded", { cause: e });
    }
  };

  const statusList = options.statusList ? new StatusListChecker({ issuer, getKey, algorithms, now, clockTolerance: tolerance }, options.statusList) : undefined;
  const cache = options.cache ? new TokenCache(options.cache) : undefined;
  // built once: verify() runs on every request
  const compactOptions = { algorithms };

  async function verify(token: string, verifyOptions?: VerifyOptions): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw new VerificationError('ERR_TOKEN_MALFORMED', 'not a compact JWS of acceptable size');
    if (cache) {
      const hit = cache.get(token);
      if (hit) {
        // the key that signed it must still be published, unchanged, in a fresh set: a removed
        // (perhaps leaked) key takes its cached tokens with it
        if (jwks.keyFingerprint(hit.kid) === hit.key) {
          if (hit.claims.exp <= Math.floor(now() / 1000) - tolerance) cache.delete(token);
          checkTimes(hit.claims); // a cached token still expires
          return accept(token, hit.claims, hit.kid, verifyOptions);
        }
        cache.delete(token); // verified again in full below (a stale set is refetched first)
      }
    }
    if (!COMPACT_JWS.test(token)) throw new VerificationError('ERR_TOKEN_MALFORMED', 'not a compact JWS of acceptable size');
    const header = checkHeader(decodeSegment(token.slice(0, token.indexOf('.')), 'header'), algorithms);
    const kid = header.kid as string;
    // read before compactVerify calls getKey (in this same tick), so it names the set that key came from
    const keyFingerprint = cache ? jwks.keyFingerprint(kid) : undefined;

    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await compactVerify(token, getKey, compactOptions));
    } catch (e) {
      throw translate(e);
    }
    const claims = parseJson(payloadBytes, 'payload');

    // RFC 9068 §4: an ID token or any other JWT signed by the same key is not an access token
    if (typeof header.typ !== 'string' || !isAccessTokenType(header.typ)) throw new VerificationError('ERR_TOKEN_TYPE', 'typ is not at+jwt');
    if (claims.iss !== issuer) throw new VerificationError('ERR_TOKEN_ISSUER', 'iss is not the expected issuer');
    const aud = claims.aud;
    const audienceOk = typeof aud === 'string' ? audiences.includes(aud) : Array.isArray(aud) && aud.some((a) => typeof a === 'string' && audiences.includes(a));
    if (!audienceOk) throw new VerificationError('ERR_TOKEN_AUDIENCE', 'aud does not name this resource server');

    checkTimes(claims);
    if (!isAccessTokenClaims(claims)) throw new VerificationError('ERR_TOKEN_MALFORMED', 'a claim RFC 9068 requires is missing or mistyped');
    await accept(token, claims, kid, verifyOptions);
    // cached only once it passed everything, and only when the set it was checked against was fresh
    if (cache && keyFingerprint !== undefined) cache.set(token, { claims: deepFreeze(claims), kid, key: keyFingerprint });
    return claims;
  }

  /** exp/nbf/iat against the clock: on every call, cached or not. */
  function checkTimes(claims: Record<string, unknown>): void {
    const nowSeconds = Math.floor(now() / 1000);
    if (!isNumericDate(claims.exp)) throw new VerificationError('ERR_TOKEN_MALFORMED', 'exp is missing or not a number');
    if (claims.exp <= nowSeconds - tolerance) throw new VerificationError('ERR_TOKEN_EXPIRED', 'the token has expired');
    if (claims.nbf !== undefined && (!isNumericDate(claims.nbf) || claims.nbf > nowSeconds + tolerance)) throw new VerificationError('ERR_TOKEN_NOT_YET_VALID', 'nbf is in the future');
    if (!isNumericDate(claims.iat)) throw new VerificationError('ERR_TOKEN_MALFORMED', 'iat is missing or not a number');
    if (claims.iat > nowSeconds + tolerance) throw new VerificationError('ERR_TOKEN_NOT_YET_VALID', 'iat is in the future');
  }

  /**
   * The checks whose answer can change after the signature was checked, run on every call, after
   * checkTimes: the deny list, the DPoP proof and the status list.
   */
  function accept(token: string, claims: AccessTokenClaims, kid: string, verifyOptions: VerifyOptions | undefined): Promise<AccessTokenClaims> {
    if (denyList) {
      // the kid again: its entry may have arrived while the signature was being checked
      if (denyList.isKidDenied(kid) || denyList.isDenied(claims)) throw new VerificationError('ERR_TOKEN_REVOKED', 'the token has been revoked');
      if (!denyList.fresh) denyList.nudge();
      // fail closed: a list we could not refresh may be missing the revocation that matters
      if (!denyList.fresh && !denyList.failOpen) throw new VerificationError('ERR_DENY_LIST_UNAVAILABLE', 'the deny list has not been synced within maxStaleness');
    }
    // RFC 9449 §7.1: a bound token is worth nothing without a proof of its key (a stolen one
    // presented as Bearer is refused); last, so a bad token never reaches the jti cache
    if (verifyOptions?.dpop) return dpopThenStatus(token, claims, verifyOptions.dpop);
    if (boundKey(claims.cnf) !== undefined) throw new VerificationError('ERR_DPOP_BINDING', 'the access token is DPoP-bound: it needs a DPoP proof');
    // last: the one check that may fetch, done only for a token that passed everything else
    if (statusList) return statusList.check(claims).then(() => claims);
    return Promise.resolve(claims);
  }

  async function dpopThenStatus(token: string, claims: AccessTokenClaims, request: DpopRequest): Promise<AccessTokenClaims> {
    await dpop.check(token, claims.cnf, request);
    if (statusList) await statusList.check(claims);
    return claims;
  }

  return {
    issuer,
    audience: options.audience,
    dpopAlgorithms: dpop.algorithms,
    async ready() {
      const loads: Promise<unknown>[] = [];
      if (!jwks.fresh) {
        loads.push(
          jwks.reload().catch((e: unknown) => {
            throw new VerificationError('ERR_JWKS_UNAVAILABLE', `the JWK Set at ${jwksUri.href} could not be loaded`, { cause: e });
          }),
        );
      }
      if (denyList) {
        denyList.nudge();
        loads.push(
          denyList.whenLoaded().catch((e: unknown) => {
            throw new VerificationError('ERR_DENY_LIST_UNAVAILABLE', `the deny list could not be loaded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          }),
        );
      }
      await Promise.all(loads);
    },
    verify,
    close() {
      denyList?.close();
      jwks.close();
    },
  };
}
