// The JWKS and the metadata document are answered ahead of Koa (src/http/documents.ts): the answer
// must be the one the Koa route gives, with the same log line and metrics, and only the exact
// GET/HEAD paths may take that way.
import http from 'node:http';
import type { Context, Next } from 'koa';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentResponder } from '../../src/http/documents.js';
import { LogCapture, type TestApp, createTestApp } from '../helpers.js';

const PATHS = ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server'];

describe('public documents answered ahead of Koa', () => {
  let t: TestApp;
  let logs: LogCapture;
  let server: http.Server;
  let request: ReturnType<typeof supertest>;
  /** Paths of the requests that reached Koa's middleware. */
  const reachedKoa: string[] = [];

  beforeAll(async () => {
    logs = new LogCapture();
    t = await createTestApp({ logs, config: { issuer: 'https://auth.example.com' } });
    t.app.koa.middleware.unshift(async (ctx: Context, next: Next) => {
      reachedKoa.push(ctx.url);
      await next();
    });
    server = http.createServer(t.app.callback());
    request = supertest(server);
  });
  afterAll(async () => {
    server.close();
    await t.close();
  });

  const withoutDate = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'date'));

  it('answers GET and HEAD on the exact paths without Koa', async () => {
    reachedKoa.length = 0;
    for (const path of PATHS) {
      expect((await request.get(path)).status).toBe(200);
      expect((await request.head(path)).status).toBe(200);
    }
    expect(reachedKoa).toEqual([]);
  });

  it('gives the answer the Koa route gives: status, headers and body, for GET, HEAD and a conditional GET', async () => {
    const etag = String((await request.get(PATHS[0] as string)).headers.etag);
    const cases: Array<[string, (path: string) => supertest.Test]> = [
      ['GET', (path) => request.get(path)],
      ['HEAD', (path) => request.head(path)],
      ['GET If-None-Match', (path) => request.get(path).set('If-None-Match', etag)],
      ['GET stale If-None-Match', (path) => request.get(path).set('If-None-Match', '"other", W/"another"')],
    ];
    for (const path of PATHS) {
      for (const [name, send] of cases) {
        reachedKoa.length = 0;
        const fast = await send(path);
        const viaKoa = await send(`${path}?via=koa`);
        expect(reachedKoa, `${name} ${path}`).toEqual([`${path}?via=koa`]);
        expect(fast.status, `${name} ${path}`).toBe(viaKoa.status);
        expect(withoutDate(fast.headers), `${name} ${path}`).toEqual(withoutDate(viaKoa.headers));
        expect(fast.text ?? '', `${name} ${path}`).toBe(viaKoa.text ?? '');
      }
    }
    // the JWKS with a matching ETag is the only 304; the https issuer brings HSTS on both ways
    expect((await request.get(PATHS[0] as string).set('If-None-Match', etag)).status).toBe(304);
    expect((await request.get(PATHS[0] as string)).headers['strict-transport-security']).toBe('max-age=31536000');
  });

  it('leaves every other request to Koa: other methods, credentials in the query, other paths', async () => {
    reachedKoa.length = 0;
    expect((await request.post(PATHS[0] as string).type('form').send('a=b')).status).toBe(405);
    const leaked = await request.get(`${PATHS[0]}?access_token=abc`);
    expect(leaked.status).toBe(400);
    expect(leaked.body.error).toBe('invalid_request');
    expect((await request.get('/.well-known/jwks.json/')).status).toBe(200);
    expect((await request.get('/.well-known/JWKS.json')).status).toBe(200); // the router matches case-insensitively
    expect(reachedKoa).toHaveLength(4);
  });

  it('logs one request line and counts the request under its route, as Koa requests are', async () => {
    logs.lines.length = 0;
    await request.get(PATHS[0] as string).expect(200);
    const lines = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: 'GET', path: '/.well-known/jwks.json', status: 200 });
    expect(lines[0]?.ms).toBeTypeOf('number');
    const metrics = await request.get('/metrics');
    expect(metrics.text).toMatch(/tollgate_http_requests_total\{method="GET",route="\/\.well-known\/jwks\.json",status="200"\} [1-9]/);
    expect(metrics.text).toMatch(/tollgate_http_requests_total\{method="GET",route="\/\.well-known\/jwks\.json",status="304"\} [1-9]/);
    expect(metrics.text).toMatch(/tollgate_http_request_duration_seconds_count\{method="HEAD",route="\/\.well-known\/oauth-authorization-server",status="200"\} [1-9]/);
  });

  it('serves the new JWKS, with a new ETag, as soon as the keyring changes', async () => {
    const before = await request.get(PATHS[0] as string);
    await t.app.services.keys.rotate('ES256');
    await t.app.services.keyring.refresh();
    const after = await request.get(PATHS[0] as string);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(after.text).not.toBe(before.text);
    expect(after.headers['content-length']).toBe(String(Buffer.byteLength(after.text)));
    expect((await request.get(PATHS[0] as string).set('If-None-Match', String(before.headers.etag))).status).toBe(200);
  });

  it('leaves a request to Koa when its document cannot be produced, having written nothing', async () => {
    const logged: unknown[] = [];
    const answer = documentResponder({
      documents: new Map([['/broken', () => { throw new Error('no keys'); }]]),
      securityHeaders: [],
      log: (line) => logged.push(line),
    });
    const fallback = http.createServer((req, res) => {
      if (!answer(req, res)) res.writeHead(500, { 'content-type': 'text/plain' }).end('left to koa');
    });
    try {
      const res = await supertest(fallback).get('/broken');
      expect(res.status).toBe(500);
      expect(res.text).toBe('left to koa');
      expect(logged).toEqual([]);
    } finally {
      fallback.close();
    }
  });
});
