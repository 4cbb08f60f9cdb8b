// RFC 6749 §5: dispatches a token request to the handler registered for its grant_type.
import { InvalidRequest, UnauthorizedClient, UnsupportedGrantType } from './errors.js';
import type { GrantHandler, TokenRequest, TokenResponse } from './grants/grant.js';

export class TokenEndpoint {
  private readonly handlers = new Map<string, GrantHandler>();

  constructor(handlers: readonly GrantHandler[]) {
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
    if (!request.client.grants.has(grantType)) throw new UnauthorizedClient(`the client may not use the ${grantType} grant`);
    return handler.handle(request);
  }
}
