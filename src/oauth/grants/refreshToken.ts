// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2), read like fosite's
// flow_refresh.go: check the request, rotate the family's token (RefreshFamilies decides: rotated,
// a retry within the grace window, a refusal, or a replay that revoked the family), map the
// outcome to an OAuth error or a response, sign.
import type { Audit } from '../../audit/audit.js';
import type { AccessTokens } from '../../tokens/accessTokens.js';
import type { RefreshFamilies } from '../../tokens/refreshFamilies.js';
import { RefreshTokenMinter } from '../../tokens/refreshTokens.js';
import type { RefusalReason } from '../../tokens/rotation.js';
import { InvalidGrant, InvalidScope } from '../errors.js';
import type { ProtocolEvents } from '../events.js';
import { parseScope } from '../scope.js';
import { type GrantHandler, required } from './grant.js';

/** The private detail of each refusal (the client sees invalid_grant's fixed description). */
const REFUSALS: Record<RefusalReason, string> = {
  unknown: 'the refresh token is invalid',
  foreign: 'the refresh token was not issued to this client',
  revoked: 'the refresh token has been revoked',
  expired: 'the refresh token has expired',
  disabled: 'the user is disabled',
  raced: 'the refresh token was already used',
};

export interface RefreshTokenGrantDeps {
  families: RefreshFamilies;
  accessTokens: AccessTokens;
  audit: Audit;
  events: ProtocolEvents;
}

export function refreshTokenGrant({ families, accessTokens, audit, events }: RefreshTokenGrantDeps): GrantHandler {
  return {
    grantType: 'refresh_token',
    async handle({ params, client, ip, arrival, receivedAt, dpopJkt }) {
      const presented = required(params, 'refresh_token');
      // malformed (no prefix, bad checksum): refused before any lookup
      if (!RefreshTokenMinter.isWellFormed(presented)) throw new InvalidGrant('the refresh token is invalid');
      const outcome = await families.rotate({ presented, client, scope: parseScope(params.get('scope')), arrival, receivedAt, ip, dpopJkt });
      switch (outcome.kind) {
        case 'refused':
          throw new InvalidGrant(REFUSALS[outcome.reason]);
        case 'scope_beyond_grant':
          throw new InvalidScope(`scope ${outcome.beyond.join(' ')} is not within the scope originally granted`);
        case 'unbound':
          if (outcome.why === 'other key') events.dpopRefused('binding');
          await audit.record({ type: 'dpop.binding_mismatch', user_id: outcome.session.userId, client_id: client.id, ip, detail: { sid: outcome.session.sid, proof: outcome.why } });
          throw new InvalidGrant(`the refresh token is bound to a DPoP key and the request has ${outcome.why === 'no proof' ? 'no proof' : 'a proof of another key'}`);
        case 'replay':
          events.refreshReuse();
          throw new InvalidGrant('the refresh token was already used; its session has been revoked');
      }
      const { session, scope, roles, successor } = outcome;
      const ttl = client.lifetimes.accessTokenSeconds;
      try {
        const { token } = await accessTokens.issue({ sub: session.userId, audience: client.audience, clientId: client.id, scope, roles, sid: session.sid, status: session.status, ttlSeconds: ttl, jkt: dpopJkt });
        if (outcome.kind === 'retry') {
          events.refreshRetry();
          await audit.record({ type: 'refresh.retry', user_id: session.userId, client_id: client.id, ip, detail: { sid: session.sid } });
        }
        events.tokenIssued('refresh_token');
        return { access_token: token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, refresh_token: successor, scope };
      } finally {
        // the successor leaves now: a spent token presented after this is a replay
        if (outcome.kind === 'rotated') families.released(presented);
      }
    },
  };
}
