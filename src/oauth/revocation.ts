// RFC 7009. A refresh token revokes its whole family (and denies the family's `sid`, so its access
// tokens stop working everywhere); an access token is denied by `jti` until it expires. Unknown,
// expired, malformed or another client's tokens: 200 and nothing happens (§2.2).
import type { Client } from '../clients/client.js';
import type { AccessTokens } from '../tokens/accessTokens.js';
import type { AccessTokenRevocations } from '../tokens/accessTokenRevocations.js';
import type { RefreshFamilies } from '../tokens/refreshFamilies.js';
import { UnsupportedTokenType } from './errors.js';
import type { ProtocolEvents } from './events.js';

export const TOKEN_TYPE_HINTS = ['access_token', 'refresh_token'] as const;
export type TokenTypeHint = (typeof TOKEN_TYPE_HINTS)[number];

/**
 * RFC 7009 §2.1: the hint only orders the search, which always extends to every type we issue. A
 * hint naming a type we don't issue (an ID token, a SAML assertion) is the client telling us what
 * it presents: if the token is none of ours, that type is one this server can't revoke (§2.2.1).
 */
export function parseHint(hint: string | undefined): TokenTypeHint | { unsupported: string } | undefined {
  if (hint === undefined || hint === '') return undefined;
  return (TOKEN_TYPE_HINTS as readonly string[]).includes(hint) ? (hint as TokenTypeHint) : { unsupported: hint };
}

/** What was revoked, for tests and logs; the HTTP answer is 200 either way. */
export type RevocationResult = 'refresh_token' | 'access_token' | 'none';

export interface RevocationDeps {
  families: RefreshFamilies;
  accessTokens: AccessTokens;
  revocations: AccessTokenRevocations;
  events: ProtocolEvents;
}

export type Revoke = (client: Client, token: string, hint: ReturnType<typeof parseHint>, ip?: string) => Promise<RevocationResult>;

export function revocation({ families, accessTokens, revocations, events }: RevocationDeps): Revoke {
  const revokeRefreshToken = async (client: Client, token: string, ip?: string): Promise<RevocationResult> => {
    const result = await families.revokeByToken(token, client.id, { ip });
    if (result === 'unknown') return 'none';
    if (result === 'revoked') events.revoked('refresh_token');
    return 'refresh_token';
  };

  const revokeAccessToken = async (client: Client, token: string, ip?: string): Promise<RevocationResult> => {
    // not kept in the cache of verified tokens: a revoked token is not worth a place there
    const claims = await accessTokens.verify(token, { remember: false });
    if (!claims) return 'none';
    // another client's token: ignored, and the answer does not say so
    if (claims.client_id !== client.id) return 'access_token';
    if (await revocations.revoke(claims, ip)) events.revoked('access_token');
    return 'access_token';
  };

  return async (client, token, hint, ip) => {
    // a wrong hint must still find the token (§2.1): try the hinted type first, then the other
    const order: TokenTypeHint[] = hint === 'access_token' ? ['access_token', 'refresh_token'] : ['refresh_token', 'access_token'];
    for (const type of order) {
      const result = type === 'refresh_token' ? await revokeRefreshToken(client, token, ip) : await revokeAccessToken(client, token, ip);
      if (result !== 'none') return result;
    }
    // the hint is not echoed: error_description allows printable ASCII only (RFC 6749 §5.2)
    if (typeof hint === 'object') throw new UnsupportedTokenType('this server revokes only its own access_token and refresh_token types');
    return 'none';
  };
}
