// RFC 6749 §4.4: a confidential client gets an access token for itself (sub = client_id), no
// refresh token.
import { hasUuidForm } from '../../clients/clients.js';
import type { StatusLists } from '../../statuslist/statusLists.js';
import type { AccessTokens } from '../../tokens/accessTokens.js';
import { UnauthorizedClient } from '../errors.js';
import type { ProtocolEvents } from '../events.js';
import { grantScope } from '../scope.js';
import type { GrantHandler } from './grant.js';

export function clientCredentialsGrant({ accessTokens, statusLists, events }: { accessTokens: AccessTokens; statusLists: Pick<StatusLists, 'clientSlot' | 'claim'>; events: ProtocolEvents }): GrantHandler {
  return {
    grantType: 'client_credentials',
    async handle({ params, client, dpopJkt }) {
      if (client.isPublic) throw new UnauthorizedClient('a public client cannot use the client_credentials grant');
      // `clients add` refuses such ids; a store from before that rule may still hold one, and its
      // token's sub would name a user to every resource server
      if (hasUuidForm(client.id)) throw new UnauthorizedClient('a client whose id has the form of a user id (a UUID) cannot use the client_credentials grant');
      const scope = grantScope(params.get('scope'), client.scope);
      const ttl = client.lifetimes.accessTokenSeconds;
      // its own status-list index, from the client's block (no store write per token: issue 18)
      const status = statusLists.claim(await statusLists.clientSlot(client.id, ttl));
      const { token } = await accessTokens.issue({ sub: client.id, audience: client.audience, clientId: client.id, scope, status, ttlSeconds: ttl, jkt: dpopJkt });
      events.tokenIssued('client_credentials');
      return { access_token: token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, scope };
    },
  };
}
