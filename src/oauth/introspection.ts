// RFC 7662. Active means: one of our access tokens (published key, allowed alg, typ at+jwt, our
// iss, unexpired) that no deny-list entry covers, or a refresh token that is unspent, unrevoked
// and unexpired. Anything else is exactly {"active": false} (§2.2: say nothing more). The active
// answer carries the members the issue lists and no more: `roles` and `sid` stay inside the JWT,
// so a resource server that wants them verifies the token itself.
import { seconds } from '../clock.js';
import { RefreshTokenRepository } from '../store/refreshTokens.js';
import { RefreshTokenMinter } from '../tokens/refreshTokens.js';
import type { TokenTypeHint } from './revocation.js';
import type { Services } from './services.js';

export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      scope: string;
      client_id: string;
      sub: string;
      aud?: string | string[];
      iss: string;
      exp: number;
      iat: number;
      jti?: string;
      token_type: 'Bearer' | 'DPoP' | 'refresh_token';
      /** RFC 9449 §6.2: the key a DPoP-bound access token is bound to. */
      cnf?: { jkt: string };
    };

const INACTIVE: IntrospectionResponse = { active: false };

export async function introspect(services: Services, token: string, hint: TokenTypeHint | undefined): Promise<IntrospectionResponse> {
  const looksRefresh = RefreshTokenMinter.isWellFormed(token);
  if (looksRefresh) return introspectRefreshToken(services, token);
  void hint; // the shape of the token tells us which kind it is
  return introspectAccessToken(services, token);
}

async function introspectAccessToken(services: Services, token: string): Promise<IntrospectionResponse> {
  const signed = await services.accessTokens.verifySigned(token);
  if (!signed) return INACTIVE;
  const { claims, kid } = signed;
  if (services.denyList.isDenied({ jti: claims.jti, sid: claims.sid, sub: claims.sub, client_id: claims.client_id, iat: claims.iat, kid })) return INACTIVE;
  return {
    active: true,
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    ...(isBound(claims.cnf) ? { cnf: { jkt: claims.cnf.jkt }, token_type: 'DPoP' as const } : { token_type: 'Bearer' as const }),
  };
}

function isBound(cnf: unknown): cnf is { jkt: string } {
  return typeof cnf === 'object' && cnf !== null && typeof (cnf as { jkt?: unknown }).jkt === 'string';
}

async function introspectRefreshToken(services: Services, token: string): Promise<IntrospectionResponse> {
  const row = await new RefreshTokenRepository(services.db).findWithFamily(RefreshTokenMinter.hash(token));
  const now = services.clock.now();
  if (!row || row.spent_at !== null || row.family.revoked_at !== null || row.expires_at <= now || row.family.expires_at <= now) return INACTIVE;
  return {
    active: true,
    scope: row.family.scope,
    client_id: row.family.client_id,
    sub: row.family.user_id,
    iss: services.config.issuer,
    exp: seconds(Math.min(row.expires_at, row.family.expires_at)),
    iat: seconds(row.created_at),
    token_type: 'refresh_token',
  };
}
