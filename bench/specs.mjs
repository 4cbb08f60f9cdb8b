// The contestants' requests, path by path: Tollgate's (with the pools and cycles of tokens minted
// straight into its store), the bare Koa request, and node-oidc-provider's for the paths they share.
import crypto from 'node:crypto';
import { active, basic, expectJson, form, inactiveAt, tokenResponse } from './answers.mjs';
import { opts } from './options.mjs';

export const ccBody = form({ grant_type: 'client_credentials', scope: 'api:read' });
const hinted = (hint) => (token) => form({ token, token_type_hint: hint });

/** Tollgate's requests for the principals `who` seeded in `bench` (bench/seed.mjs). */
export function tollgateRequests(seed, bench, who) {
  const passwords = bench.config.passwords;
  const appAuth = { authorization: basic(who.app.id, who.app.secret) };
  const serviceAuth = { authorization: basic(who.service.id, who.service.secret) };
  const mintRefresh = (count) => seed.mintRefreshTokens(bench, { userId: who.user.id, clientId: who.app.id, count });
  const mintAccess = () => seed.mintAccessTokens(bench, { sub: who.user.id, clientId: who.app.id, sid: crypto.randomUUID(), count: 100 });
  return {
    appAuth,
    serviceAuth,
    /** 100 of the user's access tokens (with a sid), for introspection. */
    mintAccess,
    /** What the read paths cycle over: 100 access tokens and 100 unspent refresh tokens. */
    readTokens: async () => ({
      access: await mintAccess(),
      refresh: await mintRefresh(100),
    }),
    /** Every path's request against the server at `base`. */
    specs: (read, base) => ({
      password: {
        key: 'password',
        label: 'password grant',
        path: '/token',
        headers: appAuth,
        fixedBody: form({ grant_type: 'password', username: who.user.username, password: who.user.password }),
        // two per hashing slot keeps every slot busy; more would only queue (and past the queue, 503 by design)
        connections: Math.min(opts.connections, passwords.maxConcurrentHashes * 2, passwords.maxConcurrentHashes + passwords.maxQueuedHashes),
        expect: tokenResponse,
      },
      refresh: { key: 'refresh', label: 'refresh_token grant', path: '/token', headers: appAuth, mint: mintRefresh, body: (t) => form({ grant_type: 'refresh_token', refresh_token: t }), expect: tokenResponse },
      client_credentials: { key: 'client_credentials', label: 'client_credentials', path: '/token', headers: serviceAuth, fixedBody: ccBody, expect: tokenResponse },
      introspect_access: { key: 'introspect_access', label: 'introspect access token', path: '/introspect', headers: serviceAuth, cycle: read.access, body: hinted('access_token'), expect: active },
      introspect_refresh: { key: 'introspect_refresh', label: 'introspect refresh token', path: '/introspect', headers: serviceAuth, cycle: read.refresh, body: hinted('refresh_token'), expect: active },
      revoke_access: {
        key: 'revoke_access',
        label: 'revoke access token',
        path: '/revoke',
        headers: serviceAuth,
        mint: (count) => seed.mintAccessTokens(bench, { sub: who.service.id, clientId: who.service.id, count }),
        body: hinted('access_token'),
        confirm: inactiveAt(`${base}/introspect`, serviceAuth),
      },
      revoke_refresh: { key: 'revoke_refresh', label: 'revoke refresh token', path: '/revoke', headers: appAuth, mint: mintRefresh, body: hinted('refresh_token'), confirm: inactiveAt(`${base}/introspect`, serviceAuth) },
      jwks: { key: 'jwks', label: 'JWKS', method: 'GET', path: '/.well-known/jwks.json', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
      deny_list: { key: 'deny_list', label: 'deny-list feed (100 entries)', method: 'GET', path: '/deny-list', headers: serviceAuth, expect: expectJson('100 entries', (j) => j.entries?.length === 100) },
    }),
  };
}

/** Bare Koa gets the client_credentials request (Basic header and body). */
export const koaSpec = (serviceAuth) => ({ key: 'koa', label: 'bare Koa POST (form in, JSON out)', path: '/token', headers: serviceAuth, fixedBody: ccBody });
/** The bare Koa GET JWKS is held against (issue 19): no body, a small JSON answer. */
export const koaGetSpec = { key: 'koa_get', label: 'bare Koa GET (JSON out)', method: 'GET', path: '/.well-known/jwks.json' };
/** Which bare Koa request a path is held against: JWKS is a GET, every other path a POST. */
export const koaFor = (key, serviceAuth) => (key === 'jwks' ? koaGetSpec : koaSpec(serviceAuth));

/** node-oidc-provider's requests for the paths it shares with Tollgate; `info` is bench/peer.mjs's startup line. */
export async function peerSpecs(info, base) {
  const auth = { authorization: basic(info.clientId, info.clientSecret) };
  // opaque client_credentials tokens: the only access tokens v9 introspects or revokes
  const mint = async (count) => {
    const out = [];
    let left = count;
    const worker = async () => {
      while (left > 0) {
        left--;
        const r = await fetch(`${base}/token`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: ccBody });
        if (r.status !== 200) throw new Error(`peer token request: ${r.status} ${await r.text()}`);
        out.push((await r.json()).access_token);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return out;
  };
  return {
    jwks: { key: 'jwks', label: 'JWKS', method: 'GET', path: '/jwks', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
    introspect_access: { key: 'introspect_access', label: 'introspect access token (opaque)', path: '/token/introspection', headers: auth, cycle: await mint(100), body: hinted('access_token'), expect: active },
    client_credentials: { key: 'client_credentials', label: 'client_credentials (JWT)', path: '/token', headers: auth, fixedBody: form({ grant_type: 'client_credentials', scope: 'api:read', resource: info.resource }), expect: tokenResponse },
    revoke_access: { key: 'revoke_access', label: 'revoke access token (opaque)', path: '/token/revocation', headers: auth, mint, body: hinted('access_token'), confirm: inactiveAt(`${base}/token/introspection`, auth) },
  };
}

/**
 * The floors' requests (bench/floor.mjs at `base`): Tollgate's headers and bodies, with tokens the
 * floor minted (each refresh token sent once, as Tollgate's are). `keys`: the paths that run;
 * `appAuth`, `serviceAuth`: Tollgate's Basic headers (tollgateRequests).
 */
export async function floorSpecs(base, who, keys, { appAuth, serviceAuth }) {
  const mintAt = (kind, query = '') => async (count) => {
    const r = await fetch(`${base}/mint/${kind}?n=${count}${query}`, { method: 'POST' });
    if (r.status !== 200) throw new Error(`floor /mint/${kind}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const mintRefresh = mintAt('refresh', `&client_id=${encodeURIComponent(who.app.id)}`);
  const label = (path) => `floor of ${path}`;
  return {
    client_credentials: { key: 'client_credentials', label: label('client_credentials'), path: '/client_credentials', headers: serviceAuth, fixedBody: ccBody, expect: tokenResponse },
    refresh: { key: 'refresh', label: label('the refresh_token grant'), path: '/refresh', headers: appAuth, mint: mintRefresh, body: (t) => form({ grant_type: 'refresh_token', refresh_token: t }), expect: tokenResponse },
    introspect_access: keys.includes('introspect_access') && { key: 'introspect_access', label: label('access-token introspection'), path: '/introspect_access', headers: serviceAuth, cycle: await mintAt('access')(100), body: hinted('access_token'), expect: active },
    introspect_refresh: keys.includes('introspect_refresh') && { key: 'introspect_refresh', label: label('refresh-token introspection'), path: '/introspect_refresh', headers: serviceAuth, cycle: await mintRefresh(100), body: hinted('refresh_token'), expect: active },
  };
}
