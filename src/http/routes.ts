// The endpoints (INTERFACE.md): parse, authenticate, call the protocol layer, answer.
import Router from '@koa/router';
import type { Context } from 'koa';
import { parseCursor } from '../denylist/denyList.js';
import { InvalidRequest } from '../oauth/errors.js';
import { introspect } from '../oauth/introspection.js';
import { parseHint, revoke } from '../oauth/revocation.js';
import type { Services } from '../oauth/services.js';
import type { TokenEndpoint } from '../oauth/tokenEndpoint.js';
import type { ArrivalStamper } from './arrival.js';
import { readForm } from './body.js';
import { type Document, notModified } from './documents.js';
import { etagMatches } from './etag.js';
import { authenticateClient } from './clientAuth.js';
import { noStore } from './middleware.js';
import { type SseHub, streamDenyList } from './sse.js';

export interface RouteDeps {
  services: Services;
  tokenEndpoint: TokenEndpoint;
  hub: SseHub;
  /** Request arrival stamps (the refresh grant's race judgement). */
  arrivals: ArrivalStamper;
  /** Readiness beyond "the keyring has an active key": the store answers. */
  storeReachable(): Promise<boolean>;
  metrics?: { contentType: string; render(): Promise<string> } | undefined;
  /** The public documents by path (see publicDocuments). */
  documents: ReadonlyMap<string, () => Document>;
}

export function metadata(services: Services, grantTypes: string[]): Record<string, unknown> {
  const issuer = services.config.issuer;
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    revocation_endpoint: `${issuer}/revoke`,
    introspection_endpoint: `${issuer}/introspect`,
    grant_types_supported: grantTypes,
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: [],
    service_documentation: 'https://github.com/tollgate/tollgate#readme',
    // RFC 9449 §5.1
    dpop_signing_alg_values_supported: [...services.dpop.algorithms],
  };
}

/** The JWKS and the RFC 8414 metadata, by path, each as it is to be served now. */
export function publicDocuments(services: Services, grantTypes: string[]): ReadonlyMap<string, () => Document> {
  const metadataDocument: Document = { body: JSON.stringify(metadata(services, grantTypes)), contentType: 'application/json; charset=utf-8', cacheControl: 'public, max-age=3600' };
  const jwksCache = `public, max-age=${services.config.keys.jwksMaxAgeSeconds}`;
  return new Map([
    [
      '/.well-known/jwks.json',
      (): Document => {
        const { body, etag } = services.keyring.jwks();
        return { body, etag, contentType: 'application/jwk-set+json', cacheControl: jwksCache };
      },
    ],
    ['/.well-known/oauth-authorization-server', () => metadataDocument],
  ]);
}

export function createRouter(deps: RouteDeps): Router {
  const { services, tokenEndpoint, hub } = deps;
  const limits = services.config.server;
  const router = new Router();

  router.post('/token', async (ctx) => {
    const { arrival, at: receivedAt } = deps.arrivals.of(ctx.req);
    noStore(ctx);
    const params = await readForm(ctx, limits);
    const client = await authenticateClient(ctx, services, params);
    // RFC 9449: the proof (if any, or if the client must send one) is checked before the grant runs
    const nonce = services.dpop.nonce();
    if (nonce) ctx.set('DPoP-Nonce', nonce);
    const dpopJkt = await services.dpop.check(ctx.req.headersDistinct.dpop, { method: 'POST', url: `${services.config.issuer}/token`, required: client.require_dpop === 1 });
    ctx.body = await tokenEndpoint.handle({ params, client, ip: ctx.ip, receivedAt, arrival, dpopJkt });
  });

  router.post('/revoke', async (ctx) => {
    noStore(ctx);
    const params = await readForm(ctx, limits);
    const client = await authenticateClient(ctx, services, params);
    const token = params.get('token');
    if (!token) throw new InvalidRequest('the token parameter is required');
    await revoke(services, client, token, parseHint(params.get('token_type_hint')), ctx.ip);
    ctx.status = 200;
    ctx.body = '';
  });

  router.post('/introspect', async (ctx) => {
    noStore(ctx);
    const params = await readForm(ctx, limits);
    await authenticateClient(ctx, services, params, { confidentialOnly: true });
    const token = params.get('token');
    if (token === undefined) throw new InvalidRequest('the token parameter is required');
    const hint = params.get('token_type_hint');
    ctx.body = await introspect(services, token, hint === 'access_token' || hint === 'refresh_token' ? hint : undefined);
  });

  // the Koa side of the public documents: documents.ts answers the exact paths ahead of Koa,
  // these the rest (a query string, a trailing slash)
  for (const [path, document] of deps.documents) {
    router.get(path, (ctx) => {
      const doc = document();
      ctx.set('Cache-Control', doc.cacheControl);
      if (doc.etag !== undefined) ctx.set('ETag', doc.etag);
      ctx.type = doc.contentType;
      if (notModified(doc, ctx.get('if-none-match'))) {
        ctx.status = 304;
        return;
      }
      ctx.body = doc.body;
    });
  }

  router.get('/deny-list', async (ctx) => {
    await authenticateClient(ctx, services, undefined, { confidentialOnly: true });
    const after = parseCursor(typeof ctx.query.after === 'string' ? ctx.query.after : Array.isArray(ctx.query.after) ? '' : undefined);
    if (after === undefined) throw new InvalidRequest('after is not a cursor of this feed');
    if (await services.denyList.isPastHead(after)) throw new InvalidRequest('after is beyond the newest entry of this feed: start again without it');
    const { body, etag } = await services.denyList.renderedPage(after);
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('ETag', etag);
    ctx.type = 'application/json';
    if (etagMatches(ctx.get('if-none-match'), etag)) {
      ctx.status = 304;
      return;
    }
    ctx.body = body;
  });

  router.get('/deny-list/events', async (ctx) => {
    const client = await authenticateClient(ctx, services, undefined, { confidentialOnly: true });
    // the secret hash this authentication matched: the stream ends when it changes (sse.ts)
    await streamDenyList(ctx, services, hub, { clientId: client.client_id, secretHash: client.secret_hash });
  });

  router.get('/healthz', (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    const store = await deps.storeReachable();
    const key = services.keyring.hasActiveKey();
    ctx.status = store && key ? 200 : 503;
    ctx.body = { status: store && key ? 'ready' : 'not ready', store: store ? 'ok' : 'unreachable', signing_key: key ? 'ok' : 'missing' };
  });

  if (deps.metrics) {
    const metrics = deps.metrics;
    router.get('/metrics', async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.type = metrics.contentType;
      ctx.body = await metrics.render();
    });
  }

  return router;
}
