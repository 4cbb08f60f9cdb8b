// RFC 7009 for one access token: its `jti` on the deny list until it expires, with its audit row,
// in one transaction (one commit on this hot path, and no revocation without its audit row).
import type { Audit } from '../audit/audit.js';
import type { DenyList } from '../denylist/denyList.js';
import type { StatusLists } from '../statuslist/statusLists.js';
import { type Db, inTransaction } from '../store/database.js';
import type { AccessTokenClaims } from './accessTokens.js';

export class AccessTokenRevocations {
  constructor(private readonly deps: { db: Db; denyList: DenyList; audit: Audit; statusLists: Pick<StatusLists, 'revokeAccessToken'>; clockToleranceSeconds: number }) {}

  /** Denies the token; false when it already was (revoking twice is not two revocations). */
  async revoke(claims: AccessTokenClaims, ip: string | undefined): Promise<boolean> {
    const { denyList, audit } = this.deps;
    if (denyList.isDenied({ jti: claims.jti })) return false;
    const expiresAt = claims.exp + this.deps.clockToleranceSeconds;
    // a client_credentials token's sub is the client itself, not a user
    const user = claims.sub === claims.client_id ? {} : { user_id: claims.sub };
    await inTransaction(this.deps.db, async (tx) => {
      await denyList.add([{ type: 'jti', value: claims.jti, expires_at: expiresAt }], tx);
      // its status-list index goes INVALID in the same transaction (issue 18)
      await this.deps.statusLists.revokeAccessToken(claims, tx);
      await audit.record({ type: 'token.revoked', ...user, client_id: claims.client_id, ip, detail: { token_type: 'access_token', jti: claims.jti } }, tx);
    });
    await denyList.sync();
    return true;
  }
}
