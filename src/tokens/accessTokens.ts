// Access tokens: RFC 9068 JWTs signed with the active key. Verification (for introspection)
// accepts only Tollgate's own published keys, their algorithms, `typ: at+jwt` and our `iss`.
import crypto from 'node:crypto';
import { type JWTPayload, decodeProtectedHeader, jwtVerify } from 'jose';
import { type Clock, seconds } from '../clock.js';
import type { Keyring } from '../keys/keyring.js';

export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** A JWT longer than this is not ours (ours are well under 2 KiB): refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8192;

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope: string;
  roles?: string[];
  sid?: string;
  /** The token's Token Status List entry (draft-ietf-oauth-status-list §6.1). */
  status?: { status_list: { idx: number; uri: string } };
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to. */
  cnf?: { jkt: string };
}

export interface IssueRequest {
  sub: string;
  audience: string;
  clientId: string;
  scope: string;
  roles?: string[] | undefined;
  sid?: string | undefined;
  status?: { status_list: { idx: number; uri: string } } | undefined;
  ttlSeconds: number;
  /** Binds the token to this DPoP key thumbprint (RFC 9449 §6.1 `cnf.jkt`). */
  jkt?: string | undefined;
}

export interface IssuedAccessToken {
  token: string;
  claims: AccessTokenClaims;
}

// Header members that would let a token name its own verification key: never honoured (RFC 8725 §3.10).
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256'];

/** Verified tokens kept so introspecting the same token again skips the signature (bounded). */
const VERIFIED_CACHE_MAX = 5000;

export class AccessTokens {
  // token -> its verified claims and the kid that verified it. A token never changes, so its
  // signature, typ and iss need checking once; expiry and the key still being published are
  // checked on every hit, and the deny list by the caller, as for a fresh verification.
  private readonly verified = new Map<string, { claims: AccessTokenClaims; kid: string }>();

  constructor(
    private readonly deps: { keyring: Keyring; clock: Clock; issuer: string; clockToleranceSeconds: number },
  ) {}

  async issue(req: IssueRequest): Promise<IssuedAccessToken> {
    const key = this.deps.keyring.signingKey();
    const iat = seconds(this.deps.clock.now());
    const claims: AccessTokenClaims = {
      iss: this.deps.issuer,
      sub: req.sub,
      aud: req.audience,
      exp: iat + req.ttlSeconds,
      iat,
      jti: crypto.randomUUID(),
      client_id: req.clientId,
      scope: req.scope,
    };
    if (req.roles) claims.roles = req.roles;
    if (req.sid) claims.sid = req.sid;
    if (req.status) claims.status = req.status;
    if (req.jkt) claims.cnf = { jkt: req.jkt };
    // node:crypto over the claims we built (keys/jws.ts): the JWS jose would make, at half the CPU
    const token = key.signer.sign(ACCESS_TOKEN_TYPE, JSON.stringify(claims));
    return { token, claims };
  }

  /**
   * The claims of a valid access token of ours, or undefined for anything else. Never throws.
   * `remember: false` for a token that will not be asked about again (one being revoked): keeping
   * it would only push a token still in use out of the cache, and hold about 2.6 KB of memory.
   */
  async verify(token: string, { remember = true }: { remember?: boolean } = {}): Promise<AccessTokenClaims | undefined> {
    return (await this.verifySigned(token, { remember }))?.claims;
  }

  /** How many verified tokens are kept (bounded by VERIFIED_CACHE_MAX). */
  get remembered(): number {
    return this.verified.size;
  }

  /** As verify(), with the kid of the key that signed it (a removed key's `kid` deny entry). */
  async verifySigned(token: string, { remember = true }: { remember?: boolean } = {}): Promise<{ claims: AccessTokenClaims; kid: string } | undefined> {
    const hit = this.verified.get(token);
    if (hit) {
      const live = hit.claims.exp + this.deps.clockToleranceSeconds > seconds(this.deps.clock.now());
      // a removed key revokes every token it signed, cached or not
      if (live && this.deps.keyring.verificationKey(hit.kid)) return hit;
      this.verified.delete(token);
      return undefined;
    }
    const fresh = await this.verifyFresh(token);
    if (!fresh) return undefined;
    const entry = { claims: fresh.payload, kid: fresh.kid };
    if (!remember) return entry;
    if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, entry);
    return entry;
  }

  private async verifyFresh(token: string): Promise<{ payload: AccessTokenClaims; kid: string } | undefined> {
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) return undefined;
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return undefined;
    }
    // crit: extensions we do not implement must not be ignored (RFC 7515 §4.1.11); cty: ours are
    // never nested (RFC 7519 §5.2), and the inner claims of a nested token were never checked
    if (typeof header.kid !== 'string' || FORBIDDEN_HEADERS.some((h) => h in header) || header.crit !== undefined || header.cty !== undefined) return undefined;
    const key = this.deps.keyring.verificationKey(header.kid);
    // the algorithm comes from our key, never from the token (alg: none, HS256 with a public key)
    if (!key || header.alg !== key.alg) return undefined;
    try {
      const { payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        issuer: this.deps.issuer,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: this.deps.clockToleranceSeconds,
        currentDate: new Date(this.deps.clock.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
      });
      if (!isAccessTokenClaims(payload)) return undefined;
      return { payload, kid: key.kid };
    } catch {
      return undefined;
    }
  }
}

function isAccessTokenClaims(p: JWTPayload): p is AccessTokenClaims {
  return (
    typeof p.iss === 'string' &&
    typeof p.sub === 'string' &&
    (typeof p.aud === 'string' || Array.isArray(p.aud)) &&
    Number.isInteger(p.exp) &&
    Number.isInteger(p.iat) &&
    typeof p.jti === 'string' &&
    typeof p.client_id === 'string' &&
    typeof p.scope === 'string'
  );
}
