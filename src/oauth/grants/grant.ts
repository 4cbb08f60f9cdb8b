// One grant = one handler registered with the token endpoint (fosite's pattern): it names the
// grant_type it handles and turns a checked request into a token response.
import type { GrantType } from '../../clients/clients.js';
import type { Client } from '../../store/schema.js';
import type { Arrival } from '../../tokens/spendLedger.js';
import { InvalidRequest } from '../errors.js';
import type { Services } from '../services.js';

export interface TokenRequest {
  /** Form parameters, each present at most once (duplicates were refused by the HTTP layer). */
  params: ReadonlyMap<string, string>;
  client: Client;
  ip: string | undefined;
  /** When the request arrived (clock ms): compared with a spend committed by another process. */
  receivedAt: number;
  /** The request's place in this process's SpendLedger sequence, stamped as it arrived. */
  arrival: Arrival;
  /** RFC 7638 thumbprint of the key of the request's valid DPoP proof (RFC 9449), if it sent one. */
  dpopJkt?: string | undefined;
}

export interface TokenResponse {
  access_token: string;
  /** 'DPoP' when the access token is bound to a proof key (RFC 9449 §5). */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

export interface GrantHandler {
  readonly grantType: GrantType;
  handle(request: TokenRequest, services: Services): Promise<TokenResponse>;
}

export function required(params: ReadonlyMap<string, string>, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === '') throw new InvalidRequest(`the ${name} parameter is required`);
  return value;
}
