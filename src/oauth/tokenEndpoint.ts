// RFC 6749 §5: dispatches a token request to the handler registered for its grant_type.
import { allowsGrant } from '../clients/clients.js';
import { InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from './errors.js';
import { clientCredentialsGrant } from './grants/clientCredentials.js';
import type { GrantHandler, TokenRequest, TokenResponse } from './grants/grant.js';
import { passwordGrant } from './grants/password.js';
import { refreshTokenGrant } from './grants/refreshToken.js';
import type { Services } from './services.js';

export const GRANT_HANDLERS: readonly GrantHandler[] = [passwordGrant, refreshTokenGrant, clientCredentialsGrant];

export class TokenEndpoint {
  private readonly handlers = new Map<string, GrantHandler>();

  constructor(
    private readonly services: Services,
    handlers: readonly GrantHandler[] = GRANT_HANDLERS,
  ) {
    for (const h of handlers) this.handlers.set(h.grantType, h);
  }

  get grantTypes(): string[] {
    return [...this.handlers.keys()];
  }

  async handle(request: TokenRequest): Promise<TokenResponse> {
    const grantType = request.params.get('grant_type');
    if (!grantType) throw new InvalidRequest('the grant_type parameter is required');
    const handler = this.handlers.get(grantType);
    if (!handler) throw new UnsupportedGrantType(`grant_type ${grantType} is not supported`);
    if (!allowsGrant(request.client, grantType)) throw new UnauthorizedClient(`the client may not use the ${grantType} grant`);
    return handler.handle(request, this.services);
  }
}
