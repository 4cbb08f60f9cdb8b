// Fixtures for the verifier tests: a real Tollgate listening on a random loopback port whose issuer
// is its own URL, with a gate in front of the deny-list feed (to simulate an outage or a dropped
// stream) and a log of the requests the verifier made.
import { webcrypto } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { type Clock, systemClock } from '../../src/clock.js';
import { type TestApp, basic, createTestApp } from '../helpers.js';

export interface Tollgate {
  t: TestApp;
  url: string;
  /** Requests seen, in order (method, path with query, Last-Event-ID). */
  requests: { method: string; url: string; lastEventId: string | undefined }[];
  /** While true, the deny-list feed and its stream answer 503 (an outage). */
  gate: { closed: boolean };
  /** Cuts every open deny-list stream at the TCP level (a dropped connection). */
  dropStreams(): void;
  /** A web client (password + refresh_token) whose tokens are for `todo-api`. */
  web: { client_id: string; client_secret?: string };
  /** The resource server's own confidential client, for the deny-list feed. */
  feed: { client_id: string; client_secret: string };
  close(): Promise<void>;
}

export async function startTollgate(options: { clock?: Clock; config?: Record<string, unknown> } = {}): Promise<Tollgate> {
  let handler: http.RequestListener = (_req, res) => res.end();
  const requests: Tollgate['requests'] = [];
  const gate = { closed: false };
  const streams = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const lastEventId = req.headers['last-event-id'];
    requests.push({ method: req.method ?? '', url: req.url ?? '', lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined });
    if (req.url?.startsWith('/deny-list')) {
      if (gate.closed) {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
        return;
      }
      if (req.url.startsWith('/deny-list/events')) {
        streams.add(req.socket);
        req.socket.once('close', () => streams.delete(req.socket));
      }
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const t = await createTestApp({ clock: options.clock ?? systemClock, config: { issuer: url, ...options.config } });
  handler = t.app.callback();
  const web = await t.addClient('web', { audience: 'todo-api', grants: ['password', 'refresh_token'] });
  const feed = await t.addClient('todo-api', { grants: ['client_credentials'] });
  return {
    t,
    url,
    requests,
    gate,
    web,
    feed: { client_id: feed.client_id, client_secret: feed.client_secret ?? '' },
    dropStreams() {
      for (const s of streams) s.destroy();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.close();
    },
  };
}

/** A password grant; returns the token response. */
export async function login(tg: Tollgate, username: string, password: string, client = tg.web): Promise<{ access_token: string; refresh_token: string }> {
  const res = await tg.t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'password', username, password });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * Signs any header and payload with Tollgate's active key, bypassing every check a library would
 * make (so tests can build tokens with forbidden headers, wrong types and the like).
 */
export async function signAsTollgate(tg: Tollgate, header: Record<string, unknown>, payload: Record<string, unknown> | string): Promise<string> {
  const key = tg.t.app.services.keyring.signingKey();
  return signRaw({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }, payload, key.privateKey);
}

export async function signRaw(header: Record<string, unknown>, payload: Record<string, unknown> | string, privateKey: webcrypto.CryptoKey): Promise<string> {
  const enc = (v: Record<string, unknown> | string) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const algorithm = privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : privateKey.algorithm;
  const signature = Buffer.from(await webcrypto.subtle.sign(algorithm, privateKey, Buffer.from(input)));
  return `${input}.${signature.toString('base64url')}`;
}

/** Claims like Tollgate's, for hand-made tokens. */
export function claims(tg: Tollgate, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: tg.url, sub: 'c1d6a1f0-0000-4000-8000-000000000001', aud: 'todo-api', exp: now + 300, iat: now, jti: crypto.randomUUID(), client_id: 'web', scope: '', roles: [], ...overrides };
}

/** Polls until the check passes (returns its value) or the deadline passes (rethrows its last failure). */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/** The code of the VerificationError a promise rejects with ('resolved' when it does not). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return (e as { code?: string }).code ?? `not a VerificationError: ${String(e)}`;
  }
}

export interface JwksServer {
  /** The JWK Set's URL. */
  url: string;
  /** What the next response serves: the keys, and the Cache-Control header (Tollgate's form by default). */
  serve: { keys: object[]; cacheControl: string | undefined; etag?: string | undefined; age?: string | undefined };
  /** Requests seen: each with its If-None-Match. */
  requests: { ifNoneMatch: string | undefined }[];
  close(): Promise<void>;
}

/** A JWK Set on a loopback port, changeable between requests (a rotation, a removal, a header). */
export async function startJwksServer(keys: object[] = [], cacheControl = 'public, max-age=300'): Promise<JwksServer> {
  const serve: JwksServer['serve'] = { keys, cacheControl };
  const requests: JwksServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const ifNoneMatch = req.headers['if-none-match'];
    requests.push({ ifNoneMatch });
    const headers: Record<string, string> = { 'content-type': 'application/jwk-set+json' };
    if (serve.cacheControl !== undefined) headers['cache-control'] = serve.cacheControl;
    if (serve.etag !== undefined) headers.etag = serve.etag;
    if (serve.age !== undefined) headers.age = serve.age;
    if (serve.etag !== undefined && ifNoneMatch === serve.etag) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, headers).end(JSON.stringify({ keys: serve.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    serve,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An ES256 signing key with its public JWK (kid set), for hand-made issuers. */
export async function makeSigningKey(kid: string): Promise<{ kid: string; privateKey: webcrypto.CryptoKey; jwk: Record<string, unknown> }> {
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const jwk = await webcrypto.subtle.exportKey('jwk', pair.publicKey);
  return { kid, privateKey: pair.privateKey, jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' } };
}
