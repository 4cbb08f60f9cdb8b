// Client authentication (RFC 6749 §2.3): client_secret_basic, client_secret_post, or a public
// client's bare client_id. One method per request; a failure is 401 invalid_client, with a Basic
// challenge when Basic was tried. An empty secret is no secret (§3.2): requests-oauthlib, Ruby
// oauth2 and Go x/oauth2 send a public client as Basic `id:` or `client_secret=`.
import type { Context } from 'koa';
import { isClientId } from '../clients/clients.js';
import { InvalidClient, InvalidRequest } from '../oauth/errors.js';
import type { ClientAuthenticator } from '../clients/authentication.js';
import type { Client } from '../clients/client.js';
import { decodeFormComponent } from './body.js';

export interface PresentedCredentials {
  clientId: string;
  secret: string | undefined;
  method: 'client_secret_basic' | 'client_secret_post' | 'none';
}

const CHALLENGE = 'Basic realm="tollgate", charset="UTF-8"';

function failure(detail: string, basic: boolean): InvalidClient {
  const e = new InvalidClient(detail);
  if (basic) e.headers['WWW-Authenticate'] = CHALLENGE;
  return e;
}

export function presentedCredentials(ctx: Context, params: ReadonlyMap<string, string> | undefined): PresentedCredentials | undefined {
  const header = ctx.get('authorization');
  const bodyId = params?.get('client_id');
  const bodySecret = params?.get('client_secret');
  if (header) {
    const m = /^basic ([A-Za-z0-9+/=]*)$/i.exec(header.trim());
    if (!m) throw failure('the Authorization header must use the Basic scheme', true);
    const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
    // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic
    const colon = decoded.indexOf(':');
    const id = colon > 0 ? decodeFormComponent(decoded.slice(0, colon)) : undefined;
    const secret = colon > 0 ? decodeFormComponent(decoded.slice(colon + 1)) : undefined;
    // only VSCHAR ids exist: anything else (a NUL, which PostgreSQL text cannot hold) is refused before any lookup
    if (id === undefined || secret === undefined || !isClientId(id)) throw failure('the Basic credentials are malformed', true);
    if (bodySecret !== undefined) throw new InvalidRequest('use one client authentication method, not two');
    if (bodyId !== undefined && bodyId !== id) throw new InvalidRequest('client_id in the body does not match the Authorization header');
    return { clientId: id, secret: secret === '' ? undefined : secret, method: 'client_secret_basic' };
  }
  // the body parser already dropped empty values (RFC 6749 §3.2)
  if (bodyId === undefined) return undefined;
  if (!isClientId(bodyId)) throw failure('client authentication failed', false);
  if (bodySecret !== undefined) return { clientId: bodyId, secret: bodySecret, method: 'client_secret_post' };
  return { clientId: bodyId, secret: undefined, method: 'none' };
}

export interface AuthOptions {
  /** Introspection and the deny-list feed need a real secret: public clients can't use them. */
  confidentialOnly?: boolean;
}

export async function authenticateClient(ctx: Context, clients: ClientAuthenticator, params: ReadonlyMap<string, string> | undefined, options: AuthOptions = {}): Promise<Client> {
  const creds = presentedCredentials(ctx, params);
  if (!creds) throw failure('client authentication is required', false);
  const basic = creds.method === 'client_secret_basic';
  const client = await clients.authenticate(creds.clientId, creds.secret);
  if (!client) throw failure('client authentication failed', basic);
  if (options.confidentialOnly && client.isPublic) throw failure('this endpoint needs a confidential client', basic);
  ctx.state.clientId = client.id;
  return client;
}
