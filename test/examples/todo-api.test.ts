// createTodoApp in-process with a stub verifier: the routes, the per-user store, and the body rules.
// (test/e2e/todo.test.ts runs the built service against a real Tollgate.)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TodoApp, createTodoApp } from '../../examples/todo-api/app.js';
import { type AccessTokenClaims, VerificationError, type Verifier, createVerifier } from '../../src/verifier/index.js';
import { makeSigningKey, signRaw, startJwksServer } from '../verifier/fixtures.js';

// tokens are "<sub>.<role>+<role>"; anything else is invalid
const verifier: Verifier = {
  issuer: 'https://auth.example',
  audience: 'todo-api',
  ready: async () => {},
  close: () => {},
  async verify(token) {
    const m = /^([a-z]+)\.([A-Z_+]*)$/.exec(token);
    if (!m) throw new VerificationError('ERR_TOKEN_SIGNATURE', 'the signature does not verify');
    const claims: AccessTokenClaims = { iss: 'https://auth.example', sub: m[1]!, aud: 'todo-api', exp: 2e9, iat: 1e9, jti: 'j', client_id: 'web', roles: m[2]!.split('+').filter(Boolean) };
    return claims;
  },
};

describe('createTodoApp', () => {
  let dir: string;
  let app: TodoApp;
  let request: ReturnType<typeof supertest>;
  const ALL = 'RETRIEVE_TODOS+TODO_WRITER';

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-app-'));
    app = createTodoApp({ verifier, dbPath: path.join(dir, 'nested', 'todos.db') });
    request = supertest(http.createServer(app.callback()));
  });
  afterAll(() => {
    app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const add = (token: string, body: unknown, type = 'application/json') =>
    request.post('/todos').set('Authorization', `Bearer ${token}`).set('Content-Type', type).send(typeof body === 'string' ? body : JSON.stringify(body));

  it('creates its SQLite file (and directory) on first start', () => {
    expect(fs.existsSync(path.join(dir, 'nested', 'todos.db'))).toBe(true);
  });

  it("adds to-dos for the token's sub and lists only that user's, in order", async () => {
    const first = await add(`ann.${ALL}`, { text: 'one' });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: expect.any(String), text: 'one', status: 'open' });
    await add(`ann.${ALL}`, { text: '  two  ' }).expect(201);
    await add(`ben.${ALL}`, { text: "ben's" }).expect(201);
    const ann = await request.get('/todos').set('Authorization', `Bearer ann.RETRIEVE_TODOS`);
    expect(ann.status).toBe(200);
    expect(ann.body.todos.map((t: { text: string }) => t.text)).toEqual(['one', 'two']);
    expect(Object.keys(ann.body.todos[0]).sort()).toEqual(['id', 'status', 'text']);
    expect(ann.headers['cache-control']).toBe('no-store');
  });

  it('requires RETRIEVE_TODOS to read and TODO_WRITER to write (403 insufficient_scope)', async () => {
    const read = await request.get('/todos').set('Authorization', 'Bearer ann.TODO_WRITER');
    expect(read.status).toBe(403);
    expect(read.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
    expect((await add('ann.RETRIEVE_TODOS', { text: 'x' })).status).toBe(403);
  });

  it('answers 401 without a token with a bare challenge and no error information at all (RFC 6750 §3.1)', async () => {
    for (const res of [await request.get('/todos'), await add('', { text: 'x' }).unset('Authorization')]) {
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api"');
      // neither error nor error_description, in the header or in the body
      expect(res.text).not.toMatch(/error/);
    }
  });

  it('answers 401 without a token or with a bad one', async () => {
    const none = await request.get('/todos');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="todo-api"');
    const bad = await request.get('/todos').set('Authorization', 'Bearer not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toMatch(/error="invalid_token"/);
  });

  it('checks the token before it reads the body', async () => {
    expect((await add('bad token!', 'not json')).status).toBe(401);
  });

  it.each([
    ['a body that is not JSON', 'not json', 'application/json', 400],
    ['a form body', 'text=hi', 'application/x-www-form-urlencoded', 415],
    ['JSON without text', { title: 'x' }, 'application/json', 400],
    ['an empty text', { text: '   ' }, 'application/json', 400],
    ['a text that is not a string', { text: 42 }, 'application/json', 400],
    ['a text over 1000 characters', { text: 'x'.repeat(1001) }, 'application/json', 400],
    ['a body over 16 KiB', { text: 'x', pad: 'y'.repeat(17_000) }, 'application/json', 413],
  ])('refuses %s', async (_what, body, type, status) => {
    const res = await add(`ann.${ALL}`, body, type);
    expect(res.status).toBe(status);
    expect(res.body.error).toBe('invalid_request');
  });

  it('answers an unknown route 404 and a wrong method 405', async () => {
    expect((await request.get('/nope')).status).toBe(404);
    expect((await request.delete('/todos')).status).toBe(405);
  });

  it('answers a token whose alg holds CR LF, NUL or non-ASCII 401, not 500 (nothing from the token is reflected into a header)', async () => {
    const key = await makeSigningKey('k1');
    const jwks = await startJwksServer([key.jwk]);
    const real = createVerifier({ issuer: 'https://auth.example', audience: 'todo-api', jwksUri: jwks.url });
    const api = createTodoApp({ verifier: real, dbPath: path.join(dir, 'real.db') });
    try {
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: 'https://auth.example', sub: 'ann', aud: 'todo-api', exp: now + 300, iat: now, jti: 'j', client_id: 'web', roles: ['RETRIEVE_TODOS'] };
      const server = supertest(http.createServer(api.callback()));
      expect((await server.get('/todos').set('Authorization', `Bearer ${await signRaw({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }, claims, key.privateKey)}`)).status).toBe(200);
      for (const alg of ['ES256\r\nX-Injected: 1', 'ES256\u0000', 'ES256€']) {
        const res = await server.get('/todos').set('Authorization', `Bearer ${await signRaw({ alg, kid: 'k1', typ: 'at+jwt' }, claims, key.privateKey)}`);
        expect(res.status).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api", error="invalid_token", error_description="the access token algorithm is not accepted"');
      }
    } finally {
      api.close();
      real.close();
      await jwks.close();
    }
  });

  it('keeps the to-dos in the file across restarts', async () => {
    const again = createTodoApp({ verifier, dbPath: path.join(dir, 'nested', 'todos.db') });
    const res = await supertest(http.createServer(again.callback())).get('/todos').set('Authorization', 'Bearer ann.RETRIEVE_TODOS');
    again.close();
    expect(res.body.todos).toHaveLength(2);
  });
});
