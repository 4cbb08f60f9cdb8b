// RFC 7009. A refresh token revokes its whole family (and denies the family's `sid`, so its access
// tokens stop working everywhere); an access token is denied by `jti` until it expires. Unknown,
// expired, malformed or another client's tokens: 200 and nothing happens (§2.2).
import { RefreshTokenRepository } from '../store/refreshTokens.js';
import type { Client } from '../store/schema.js';
import { RefreshTokenMinter } from '../tokens/refreshTokens.js';
import { UnsupportedTokenType } from './errors.js';
import { type Services, denySession } from './services.js';

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

export async function revoke(services: Services, client: Client, token: string, hint: ReturnType<typeof parseHint>, ip?: string): Promise<RevocationResult> {
  // a wrong hint must still find the token (§2.1): try the hinted type first, then the other
  const order: TokenTypeHint[] = hint === 'access_token' ? ['access_token', 'refresh_token'] : ['refresh_token', 'access_token'];
  for (const type of order) {
    const result = type === 'refresh_token' ? await revokeRefreshToken(services, client, token, ip) : await revokeAccessToken(services, client, token, ip);
    if (result !== 'none') return result;
  }
  // the hint is not echoed: error_description allows printable ASCII only (RFC 6749 §5.2)
  if (typeof hint === 'object') throw new UnsupportedTokenType('this server revokes only its own access_token and refresh_token types');
  return 'none';
}

async function revokeRefreshToken(services: Services, client: Client, token: string, ip?: string): Promise<RevocationResult> {
  if (!RefreshTokenMinter.isWellFormed(token)) return 'none';
  const { clock } = services;
  const found = await services.db.transaction().execute(async (trx) => {
    const repo = new RefreshTokenRepository(trx);
    const row = await repo.findWithFamily(RefreshTokenMinter.hash(token));
    if (!row) return undefined;
    // another client's token: ignored, and the answer does not say so
    if (row.family.client_id !== client.client_id) return 'foreign' as const;
    const now = clock.now();
    // already revoked (by the client, reuse detection or the user's logout): nothing more to deny
    if (!(await repo.revokeFamily(row.family.id, now, 'revoked by client'))) return 'already' as const;
    await denySession(services, row.family, now, trx);
    // in the same transaction: one commit on this hot path, and no revocation without its audit row
    await services.audit.record({ type: 'token.revoked', user_id: row.family.user_id, client_id: client.client_id, ip, detail: { token_type: 'refresh_token', sid: row.family.id } }, trx);
    return row.family;
  });
  if (found === undefined) return 'none';
  if (found === 'foreign' || found === 'already') return 'refresh_token';
  await services.denyList.sync();
  services.events.revoked('refresh_token');
  return 'refresh_token';
}

async function revokeAccessToken(services: Services, client: Client, token: string, ip?: string): Promise<RevocationResult> {
  const claims = await services.accessTokens.verify(token);
  if (!claims) return 'none';
  if (claims.client_id !== client.client_id) return 'access_token';
  // revoking twice is not two revocations
  if (services.denyList.isDenied({ jti: claims.jti })) return 'access_token';
  const expiresAt = claims.exp + services.config.accessTokens.clockToleranceSeconds;
  // a client_credentials token's sub is the client itself, not a user
  const user = claims.sub === claims.client_id ? {} : { user_id: claims.sub };
  // the entry and its audit row in one transaction: one commit on this hot path, not two
  await services.db.transaction().execute(async (trx) => {
    await services.denyList.add([{ type: 'jti', value: claims.jti, expires_at: expiresAt }], trx);
    await services.statusLists.revokeAccessToken(claims, trx);
    await services.audit.record({ type: 'token.revoked', ...user, client_id: client.client_id, ip, detail: { token_type: 'access_token', jti: claims.jti } }, trx);
  });
  await services.denyList.sync();
  services.events.revoked('access_token');
  return 'access_token';
}
