// RFC 6749 §4.4: a confidential client gets an access token for itself (sub = client_id), no
// refresh token.
import { hasUuidForm } from '../../clients/clients.js';
import { UnauthorizedClient } from '../errors.js';
import { grantScope } from '../scope.js';
import { accessTokenTtl } from '../services.js';
import type { GrantHandler } from './grant.js';

export const clientCredentialsGrant: GrantHandler = {
  grantType: 'client_credentials',
  async handle({ params, client, dpopJkt }, services) {
    if (client.public === 1) throw new UnauthorizedClient('a public client cannot use the client_credentials grant');
    // `clients add` refuses such ids; a store from before that rule may still hold one, and its
    // token's sub would name a user to every resource server
    if (hasUuidForm(client.client_id)) throw new UnauthorizedClient('a client whose id has the form of a user id (a UUID) cannot use the client_credentials grant');
    const scope = grantScope(params.get('scope'), client.scope);
    const ttl = accessTokenTtl(services, client);
    const { token } = await services.accessTokens.issue({ sub: client.client_id, audience: client.audience, clientId: client.client_id, scope, ttlSeconds: ttl, jkt: dpopJkt });
    services.events.tokenIssued('client_credentials');
    return { access_token: token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, scope };
  },
};
