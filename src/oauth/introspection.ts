// RFC 7662. Active means: one of our access tokens (published key, allowed alg, typ at+jwt, our
// iss, unexpired) that no deny-list entry covers, or a refresh token that is unspent, unrevoked
// and unexpired. Anything else is exactly {"active": false} (§2.2: say nothing more). The active
// answer carries the members the issue lists and no more: `roles` and `sid` stay inside the JWT,
// so a resource server that wants them verifies the token itself.
import type { DenyList } from '../denylist/denyList.js';
import type { AccessTokens } from '../tokens/accessTokens.js';
import type { RefreshFamilies } from '../tokens/refreshFamilies.js';
import { RefreshTokenMinter } from '../tokens/refreshTokens.js';

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

export type Introspect = (token: string) => Promise<IntrospectionResponse>;

export function introspection({ accessTokens, denyList, families, issuer }: { accessTokens: AccessTokens; denyList: DenyList; families: RefreshFamilies; issuer: string }): Introspect {
  const accessToken = async (token: string): Promise<IntrospectionResponse> => {
    const signed = await accessTokens.verifySigned(token);
    if (!signed) return INACTIVE;
    const { claims, kid } = signed;
    if (denyList.isDenied({ jti: claims.jti, sid: claims.sid, sub: claims.sub, client_id: claims.client_id, iat: claims.iat, kid })) return INACTIVE;
    const bound = isBound(claims.cnf) ? { cnf: { jkt: claims.cnf.jkt }, token_type: 'DPoP' as const } : { token_type: 'Bearer' as const };
    return { active: true, scope: claims.scope, client_id: claims.client_id, sub: claims.sub, aud: claims.aud, iss: claims.iss, exp: claims.exp, iat: claims.iat, jti: claims.jti, ...bound };
  };

  const refreshToken = async (token: string): Promise<IntrospectionResponse> => {
    const live = await families.inspect(token);
    if (!live) return INACTIVE;
    return { active: true, scope: live.scope, client_id: live.clientId, sub: live.userId, iss: issuer, exp: live.exp, iat: live.iat, token_type: 'refresh_token' };
  };

  // the shape of the token tells us which kind it is; a hint is not needed (RFC 7662 §2.1)
  return (token) => (RefreshTokenMinter.isWellFormed(token) ? refreshToken(token) : accessToken(token));
}

function isBound(cnf: unknown): cnf is { jkt: string } {
  return typeof cnf === 'object' && cnf !== null && typeof (cnf as { jkt?: unknown }).jkt === 'string';
}
