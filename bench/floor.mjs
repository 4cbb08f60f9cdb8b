// The floor of a path (issue 19): what any implementation of it must do per request on this stack
// (Node, Koa 3, node:crypto, better-sqlite3), and nothing else. Like bareKoa.mjs: no router, no
// middleware; one POST handler per path, chosen by the request path (/client_credentials,
// /refresh, /introspect_access, /introspect_refresh). Not a straw man: each step below is one the
// path cannot skip, and each is done the cheapest way this stack offers. What is left out is
// everything a real server adds (logging, metrics, security headers, error envelopes, policy,
// audit, replay handling on the error path), so Tollgate's CPU over the floor's is its own cost.
//
// The clients come from FLOOR_CLIENTS (JSON: id -> { secretSha256: hex, scope }); the driver
// gets tokens through POST /mint/refresh?n=N&client_id=... and POST /mint/access?n=N (not
// measured: minted before the turns). Prints {"port"} on stdout once it listens; SIGTERM stops it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import Koa from 'koa';

const ISSUER = process.env.FLOOR_ISSUER ?? 'http://localhost:3000';
const AUDIENCE = 'bench-api';
const ACCESS_TTL = 300; // Tollgate's default accessTokens.ttlSeconds
const REFRESH_TTL = 30 * 86400;
const STATUS_URI = `${ISSUER}/statuslists/1`;
const now = () => Math.floor(Date.now() / 1000);
const sha256 = (s) => crypto.hash('sha256', s, 'buffer');

// Hashed storage of secrets is Tollgate's rule: a client's secret is kept as its SHA-256 only
const clients = new Map(Object.entries(JSON.parse(process.env.FLOOR_CLIENTS ?? '{}')).map(([id, c]) => [id, { digest: Buffer.from(c.secretSha256, 'hex'), scope: new Set(c.scope.split(' ')) }]));

// One ES256 key; the protected header is encoded once, as src/keys/jws.ts does
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SIGN_KEY = { key: privateKey, dsaEncoding: 'ieee-p1363' }; // JWS wants raw r||s (RFC 7518 §3.4)
const HEADER = Buffer.from(JSON.stringify({ alg: 'ES256', kid: crypto.randomBytes(16).toString('base64url'), typ: 'at+jwt' })).toString('base64url');

/** An RFC 9068 access token, claims in the order and shape Tollgate's (src/tokens/accessTokens.ts). */
function accessToken(sub, clientId, scope, extra) {
  const iat = now();
  const claims = { iss: ISSUER, sub, aud: AUDIENCE, exp: iat + ACCESS_TTL, iat, jti: crypto.randomUUID(), client_id: clientId, scope, ...extra };
  const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return { token: `${input}.${crypto.sign('sha256', Buffer.from(input, 'latin1'), SIGN_KEY).toString('base64url')}`, claims };
}
const status = (idx) => ({ status_list: { idx, uri: STATUS_URI } });

// The store: one table, WAL and synchronous=NORMAL as src/store/sqlite/open.ts opens Tollgate's
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-floor-'));
const db = new Database(path.join(dir, 'floor.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
// and, as Tollgate does (src/store/sqlite/checkpointer.ts), WAL checkpoints on a thread of their own
// every 50 ms rather than inside the commit that crosses wal_autocheckpoint: the cheaper way on
// this stack. The thread's processor time counts, as Tollgate's does.
db.pragma('wal_autocheckpoint = 20000');
const checkpointer = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
  const db = new (require(workerData.driver))(workerData.file, { timeout: 0 });
  db.pragma('synchronous = NORMAL');
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  const timer = setInterval(() => { try { checkpoint.all(); } catch {} }, 50);
  parentPort.once('message', () => { clearInterval(timer); db.close(); parentPort.close(); });`,
  { eval: true, workerData: { file: db.name, driver: createRequire(import.meta.url).resolve('better-sqlite3') } },
);
db.exec('CREATE TABLE refresh_tokens (hash BLOB PRIMARY KEY, client_id TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL, sid TEXT NOT NULL, status_idx INTEGER NOT NULL, iat INTEGER NOT NULL, exp INTEGER NOT NULL, spent INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID');
const insert = db.prepare('INSERT INTO refresh_tokens (hash, client_id, sub, scope, sid, status_idx, iat, exp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
// reading the row and marking it spent in one statement: the least a rotation can do
const spend = db.prepare('UPDATE refresh_tokens SET spent = 1 WHERE hash = ? AND spent = 0 AND client_id = ? AND exp > ? RETURNING sub, scope, sid, status_idx, exp');
const find = db.prepare('SELECT client_id, sub, scope, iat, exp, spent FROM refresh_tokens WHERE hash = ?');
const newToken = () => crypto.randomBytes(32).toString('base64url');
// RFC 9700 §4.14.2: a refresh token is spent once and replaced, atomically (one commit)
const rotate = db.transaction((hash, clientId, at) => {
  const row = spend.get(hash, clientId, at);
  if (!row) return undefined; // unknown, spent (a real server revokes the family here), expired, or another client's
  const successor = newToken();
  insert.run(sha256(successor), clientId, row.sub, row.scope, row.sid, row.status_idx, at, row.exp);
  return { row, successor };
});
const mintRefresh = db.transaction((n, clientId) => {
  const out = [];
  const at = now();
  for (let i = 0; i < n; i++) {
    const t = newToken();
    insert.run(sha256(t), clientId, crypto.randomUUID(), 'api:read api:write', crypto.randomUUID(), crypto.randomInt(1 << 20), at, at + REFRESH_TTL);
    out.push(t);
  }
  return out;
});

// Introspection's cache of verified access tokens (as Tollgate's on a hit), and a deny list of jti
const verified = new Map();
const denied = new Set(Array.from({ length: 100 }, () => crypto.randomUUID()));

/** RFC 6749 §2.3.1: the client_id and secret of a Basic header (form-encoded, then base64). */
function authenticate(header) {
  if (header === undefined || !header.startsWith('Basic ')) return undefined;
  const pair = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon < 0) return undefined;
  const unform = (s) => (s.includes('%') || s.includes('+') ? decodeURIComponent(s.replaceAll('+', ' ')) : s);
  const id = unform(pair.slice(0, colon));
  const client = clients.get(id);
  // the presented secret is hashed and compared in constant time with the stored digest
  return client && crypto.timingSafeEqual(sha256(unform(pair.slice(colon + 1))), client.digest) ? { id, scope: client.scope } : undefined;
}

const fail = (ctx, status, error) => {
  ctx.status = status;
  if (status === 401) ctx.set('WWW-Authenticate', 'Basic realm="floor"');
  ctx.body = { error };
};

// Each handler gets the authenticated client and the parsed form; client authentication (RFC 6749
// §2.3) and reading the form are needed by every path here, so they happen before the dispatch.
const handlers = new Map(
  Object.entries({
    // RFC 6749 §4.4: authenticate, check the grant and the scope (§3.3: never more than the client
    // may have), sign an RFC 9068 JWT (Tollgate's tokens carry a status-list entry: §6.1 of the
    // Token Status List draft), answer §5.1's JSON, never cached
    client_credentials(ctx, client, params) {
      if (params.get('grant_type') !== 'client_credentials') return fail(ctx, 400, 'unsupported_grant_type');
      const scope = params.get('scope') ?? '';
      if (!scope.split(' ').every((s) => client.scope.has(s))) return fail(ctx, 400, 'invalid_scope');
      const { token } = accessToken(client.id, client.id, scope, { status: status(Math.floor(Math.random() * (1 << 20))) });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { access_token: token, token_type: 'Bearer', expires_in: ACCESS_TTL, scope };
    },
    // RFC 6749 §6 with rotation (RFC 9700 §4.14.2): the token is found by its hash (hashed storage),
    // spent and replaced in one transaction, bound to the client that got it; then a new JWT
    refresh(ctx, client, params) {
      if (params.get('grant_type') !== 'refresh_token') return fail(ctx, 400, 'unsupported_grant_type');
      const presented = params.get('refresh_token');
      const rotated = presented && rotate(sha256(presented), client.id, now());
      if (!rotated) return fail(ctx, 400, 'invalid_grant');
      const { row, successor } = rotated;
      const { token } = accessToken(row.sub, client.id, row.scope, { sid: row.sid, status: status(row.status_idx) });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { access_token: token, token_type: 'Bearer', expires_in: ACCESS_TTL, refresh_token: successor, scope: row.scope };
    },
    // RFC 7662 on a verified-token cache hit: the signature was checked once (RFC 9068 §4), expiry
    // and revocation (RFC 7009 §2, a deny list of jti) on every call; §2.2's answer
    introspect_access(ctx, _client, params) {
      const claims = verified.get(params.get('token'));
      ctx.set('Cache-Control', 'no-store');
      if (!claims || claims.exp <= now() || denied.has(claims.jti)) ctx.body = { active: false };
      else ctx.body = { active: true, scope: claims.scope, client_id: claims.client_id, sub: claims.sub, aud: claims.aud, iss: claims.iss, exp: claims.exp, iat: claims.iat, jti: claims.jti, token_type: 'Bearer' };
    },
    // RFC 7662 for an opaque token: one lookup by its hash (only hashes are stored)
    introspect_refresh(ctx, _client, params) {
      const token = params.get('token');
      const row = token ? find.get(sha256(token)) : undefined;
      ctx.set('Cache-Control', 'no-store');
      if (!row || row.spent || row.exp <= now()) ctx.body = { active: false };
      else ctx.body = { active: true, scope: row.scope, client_id: row.client_id, sub: row.sub, iss: ISSUER, exp: row.exp, iat: row.iat, token_type: 'refresh_token' };
    },
  }),
);

/** The driver's tokens, minted before the turns (not measured). */
function mint(ctx) {
  const n = Math.min(Number(ctx.query.n) || 0, 1_000_000);
  if (ctx.path === '/mint/refresh') ctx.body = mintRefresh(n, String(ctx.query.client_id));
  else if (ctx.path === '/mint/access') {
    ctx.body = Array.from({ length: n }, () => {
      const { token, claims } = accessToken(crypto.randomUUID(), 'bench-app', 'api:read api:write', { sid: crypto.randomUUID(), status: status(crypto.randomInt(1 << 20)) });
      verified.set(token, claims);
      return token;
    });
  } else ctx.status = 404;
}

const app = new Koa();
app.use(async (ctx) => {
  if (ctx.method !== 'POST') return void (ctx.status = 405);
  if (ctx.path.startsWith('/mint/')) return mint(ctx);
  const handler = handlers.get(ctx.path.slice(1));
  if (!handler) return void (ctx.status = 404);
  // the form body, read and parsed exactly as bareKoa.mjs does
  let raw = '';
  ctx.req.setEncoding('utf8');
  for await (const chunk of ctx.req) raw += chunk;
  const params = new URLSearchParams(raw);
  const client = authenticate(ctx.req.headers.authorization);
  if (!client) return fail(ctx, 401, 'invalid_client');
  handler(ctx, client, params);
});

const server = http.createServer(app.callback());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () =>
  server.close(async () => {
    checkpointer.postMessage('stop');
    await new Promise((resolve) => checkpointer.once('exit', resolve));
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
