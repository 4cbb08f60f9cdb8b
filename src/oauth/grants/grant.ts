// One grant = one handler registered with the token endpoint (fosite's pattern): it names the
// grant_type it handles and turns a checked request into a token response. Each is built with
// exactly what it uses (the composition root wires them).
import type { Client } from '../../clients/client.js';
import type { Arrival } from '../../tokens/spendLedger.js';
import { InvalidRequest } from '../errors.js';

/** The grant types Tollgate implements (RFC 6749 §4.3, §6, §4.4). */
export const GRANT_TYPES = ['password', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

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
  handle(request: TokenRequest): Promise<TokenResponse>;
}

export function required(params: ReadonlyMap<string, string>, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === '') throw new InvalidRequest(`the ${name} parameter is required`);
  return value;
}
