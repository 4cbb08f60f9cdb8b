// The endpoints (INTERFACE.md): parse, authenticate, call the protocol layer, answer.
import Router from '@koa/router';
import type { Context } from 'koa';
import { InvalidRequest } from '../oauth/errors.js';
import type { Introspect } from '../oauth/introspection.js';
import { type Revoke, parseHint } from '../oauth/revocation.js';
import type { ClientAuthenticator } from '../clients/authentication.js';
import type { DenyList } from '../denylist/denyList.js';
import type { Keyring } from '../keys/keyring.js';
import type { TokenEndpoint } from '../oauth/tokenEndpoint.js';
import type { ArrivalStamper } from './arrival.js';
import { type BodyLimits, readForm } from './body.js';
import { type Document, notModified } from './documents.js';
import { etagMatches } from './etag.js';
import { authenticateClient } from './clientAuth.js';
import { NotFound } from './errors.js';
import { noStore } from './middleware.js';
import { STATUS_LIST_MEDIA_TYPE, type StatusLists } from '../statuslist/statusLists.js';
import type { DpopProofs } from '../dpop/proof.js';
import { feedCursor } from './feedCursor.js';
import { type SseHub, streamDenyList } from './sse.js';
import type { MetricsRenderer } from './metrics.js';

export interface RouteDeps {
  tokenEndpoint: TokenEndpoint;
  revoke: Revoke;
  introspect: Introspect;
  clients: ClientAuthenticator;
  denyList: DenyList;
  statusLists: Pick<StatusLists, 'render' | 'ttlSeconds' | 'uris'>;
  /** RFC 9449 proofs at the token endpoint. */
  dpop: Pick<DpopProofs, 'nonce' | 'check'>;
  /** The issuer: the token endpoint's URL (a proof's htu) is built from it. */
  issuer: string;
  keyring: Pick<Keyring, 'hasActiveKey'>;
  hub: SseHub;
  /** Request arrival stamps (the refresh grant's race judgement). */
  arrivals: ArrivalStamper;
  limits: BodyLimits;
  /** Readiness beyond "the keyring has an active key": the store answers. */
  storeReachable(): Promise<boolean>;
  metrics?: MetricsRenderer | undefined;
  /** The public documents by path (see publicDocuments). */
  documents: ReadonlyMap<string, () => Document>;
}

export function metadata(issuer: string, grantTypes: string[], dpopAlgorithms: readonly string[]): Record<string, unknown> {
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
    // draft-ietf-oauth-status-list §9: where the Status List Tokens of every access token are listed
    status_list_aggregation_endpoint: `${issuer}/statuslists`,
    service_documentation: 'https://github.com/tollgate/tollgate#readme',
    // RFC 9449 §5.1
    dpop_signing_alg_values_supported: [...dpopAlgorithms],
  };
}

/** The JWKS and the RFC 8414 metadata, by path, each as it is to be served now. */
export function publicDocuments(deps: { issuer: string; jwksMaxAgeSeconds: number; keyring: Pick<Keyring, 'jwks'>; dpopAlgorithms: readonly string[] }, grantTypes: string[]): ReadonlyMap<string, () => Document> {
  const metadataDocument: Document = { body: JSON.stringify(metadata(deps.issuer, grantTypes, deps.dpopAlgorithms)), contentType: 'application/json; charset=utf-8', cacheControl: 'public, max-age=3600' };
  const jwksCache = `public, max-age=${deps.jwksMaxAgeSeconds}`;
  return new Map([
    [
      '/.well-known/jwks.json',
      (): Document => {
        const { body, etag } = deps.keyring.jwks();
        return { body, etag, contentType: 'application/jwk-set+json', cacheControl: jwksCache };
      },
    ],
    ['/.well-known/oauth-authorization-server', () => metadataDocument],
  ]);
}

export function createRouter(deps: RouteDeps): Router {
  const { tokenEndpoint, hub, clients, denyList, limits } = deps;
  const tokenUrl = `${deps.issuer}/token`;
  const router = new Router();

  router.post('/token', async (ctx) => {
    const { arrival, at: receivedAt } = deps.arrivals.of(ctx.req);
    noStore(ctx);
    const params = await readForm(ctx, limits);
    const client = await authenticateClient(ctx, clients, params);
    // RFC 9449: the proof (if any, or if the client must send one) is checked before the grant runs
    const nonce = deps.dpop.nonce();
    if (nonce) ctx.set('DPoP-Nonce', nonce);
    // headersDistinct builds every header's list on first use: only when a DPoP header came at all
    // (then it tells one header from several, RFC 9449 §4.3)
    const proofs = ctx.req.headers.dpop === undefined ? undefined : ctx.req.headersDistinct.dpop;
    const dpopJkt = await deps.dpop.check(proofs, { method: 'POST', url: tokenUrl, required: client.requireDpop });
    ctx.body = await tokenEndpoint.handle({ params, client, ip: ctx.ip, receivedAt, arrival, dpopJkt });
  });

  router.post('/revoke', async (ctx) => {
    noStore(ctx);
    const params = await readForm(ctx, limits);
    const client = await authenticateClient(ctx, clients, params);
    const token = params.get('token');
    if (!token) throw new InvalidRequest('the token parameter is required');
    await deps.revoke(client, token, parseHint(params.get('token_type_hint')), ctx.ip);
    ctx.status = 200;
    ctx.body = '';
  });

  router.post('/introspect', async (ctx) => {
    noStore(ctx);
    const params = await readForm(ctx, limits);
    await authenticateClient(ctx, clients, params, { confidentialOnly: true });
    const token = params.get('token');
    if (token === undefined) throw new InvalidRequest('the token parameter is required');
    ctx.body = await deps.introspect(token);
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
    await authenticateClient(ctx, clients, undefined, { confidentialOnly: true });
    const after = await feedCursor(denyList, typeof ctx.query.after === 'string' ? ctx.query.after : Array.isArray(ctx.query.after) ? '' : undefined, 'after');
    const { body, etag } = await denyList.renderedPage(after);
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
    const client = await authenticateClient(ctx, clients, undefined, { confidentialOnly: true });
    // the secret hash this authentication matched: the stream ends when it changes (sse.ts)
    await streamDenyList(ctx, denyList, hub, { clientId: client.id, secretHash: client.secretHash });
  });

  // Token Status List (draft-ietf-oauth-status-list §8): no client authentication, the list
  // reveals only bits at random indices. Rendered at most once per change and per ttl (publisher.ts).
  router.get('/statuslists/:id', async (ctx) => {
    const rendered = await deps.statusLists.render(ctx.params.id ?? '');
    if (!rendered) throw new NotFound('no such status list');
    // a verifier caches the list for its ttl claim; HTTP caches may as long, no longer
    ctx.set('Cache-Control', `public, max-age=${deps.statusLists.ttlSeconds}`);
    ctx.set('ETag', rendered.etag);
    ctx.type = STATUS_LIST_MEDIA_TYPE;
    if (etagMatches(ctx.get('if-none-match'), rendered.etag)) {
      ctx.status = 304;
      return;
    }
    ctx.body = rendered.token;
  });

  // the Status List Aggregation (§9): every list's URI
  router.get('/statuslists', async (ctx) => {
    ctx.set('Cache-Control', `public, max-age=${deps.statusLists.ttlSeconds}`);
    ctx.body = { status_lists: await deps.statusLists.uris() };
  });

  router.get('/healthz', (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    const store = await deps.storeReachable();
    const key = deps.keyring.hasActiveKey();
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
