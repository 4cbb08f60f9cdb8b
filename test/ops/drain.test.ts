// SIGTERM under load: `node dist/src/main.js` serving a stream of refresh grants is told to stop
// mid-stream, then started again on the same store. "No failed request" means: every request the
// server accepted was answered 200, and every request it never accepted (connection refused, or
// closed before any response) can be retried on the restarted server with the same refresh token,
// which still works there: if the stopping server had spent that token without answering, the
// retry would be refused (a replay, or a lost race) and the token's session lost.
// On SQLite (a temp file) under `npm test`, on a Postgres database under `npm run test:postgres`.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../../src/store/audit.js';
import { PASSWORD, basic, createTestApp } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';
import { waitFor } from '../fleet/fleet.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const CHAINS = 4;

type Creds = { client_id: string; client_secret?: string };
type Outcome = { kind: 'response'; status: number; body: Record<string, unknown>; headers: http.IncomingHttpHeaders } | { kind: 'unaccepted'; code: string };

interface Server {
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

let dir: string;
let database: TestDatabase;
let env: NodeJS.ProcessEnv;
let web: Creds;
const children: ChildProcess[] = [];

async function start(): Promise<Server> {
  const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await waitFor('the server to listen', 20_000, () => {
    if (child.exitCode !== null) throw new Error(`the server exited ${child.exitCode}:\n${out}`);
    for (const line of out.split('\n')) {
      if (!line.includes('tollgate listening')) continue;
      const port = (JSON.parse(line) as { port?: number }).port;
      if (port) return port;
    }
    return undefined;
  });
  return { url: `http://127.0.0.1:${port}`, child, exited, output: () => out };
}

/** One request on its own connection (no keep-alive: a refused connection is then unambiguous). */
function post(url: string, pathname: string, client: Creds, form: Record<string, string>): Promise<Outcome> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve) => {
    const req = http.request(`${url}${pathname}`, { method: 'POST', agent: false, headers: { Authorization: basic(client), 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body), Connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ kind: 'response', status: res.statusCode ?? 0, body: JSON.parse(text || '{}') as Record<string, unknown>, headers: res.headers }));
      // a response cut off half-way is an answer that failed, not an unaccepted request
      res.on('error', () => resolve({ kind: 'response', status: -1, body: {}, headers: res.headers }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ kind: 'unaccepted', code: e.code ?? e.message }));
    req.end(body);
  });
}

function refreshTokenOf(outcome: Outcome): string {
  if (outcome.kind !== 'response' || outcome.status !== 200) throw new Error(`expected a token response, got ${JSON.stringify(outcome)}`);
  return String(outcome.body.refresh_token);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-drain-'));
  database = await createTestDatabase();
  const kek = crypto.randomBytes(32);
  // the user and client, written by an app on the same store with the same key-encryption key
  const store = database.open();
  const t = await createTestApp({ store, kek, config: { database: { url: database.url } } });
  await t.addUser('alice');
  web = await t.addClient('web', { grants: ['password', 'refresh_token'], refreshGraceSeconds: 0 });
  await t.close();
  await store.close();
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ passwords: { memoryCostKiB: 1024, timeCost: 1, parallelism: 1 }, server: { shutdownTimeoutMs: 15000 }, log: { level: 'info' } }));
  // only what an operator's shell would pass
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    TOLLGATE_CONFIG: config,
    TOLLGATE_DATABASE: database.url,
    TOLLGATE_KEY_ENCRYPTION_KEY: kek.toString('base64url'),
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_PORT: '0',
    TOLLGATE_ISSUER: 'http://localhost:3000',
  };
});

afterAll(async () => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await database?.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('SIGTERM under load', () => {
  it('drains: no accepted request fails, every refused one succeeds on the restarted server, no refresh token is lost', async () => {
    const first = await start();
    let url = first.url;
    let restarted = false;

    const tokens: string[] = [];
    for (let i = 0; i < CHAINS; i++) {
      tokens.push(refreshTokenOf(await post(url, '/token', web, { grant_type: 'password', username: 'alice', password: PASSWORD })));
    }

    const failed: Array<{ chain: number; outcome: Outcome }> = [];
    const unaccepted: string[] = [];
    let succeeded = 0;
    let succeededAfterRestart = 0;
    let stop = false;
    // each chain refreshes its token over and over: the successor of every answer is the next request
    const chain = async (i: number) => {
      while (!stop) {
        const outcome = await post(url, '/token', web, { grant_type: 'refresh_token', refresh_token: tokens[i]! });
        if (outcome.kind === 'unaccepted') {
          // never reached the application: wait for the restart and retry with the same token
          unaccepted.push(outcome.code);
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        if (outcome.status !== 200) {
          failed.push({ chain: i, outcome });
          return;
        }
        tokens[i] = String(outcome.body.refresh_token);
        succeeded++;
        if (restarted) succeededAfterRestart++;
      }
    };
    const running = Array.from({ length: CHAINS }, (_, i) => chain(i));

    // a request in flight when SIGTERM arrives: headers sent, body not yet
    const slowToken = refreshTokenOf(await post(url, '/token', web, { grant_type: 'password', username: 'alice', password: PASSWORD }));
    const slowBody = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: slowToken }).toString();
    const slow = http.request(`${url}/token`, { method: 'POST', agent: false, headers: { Authorization: basic(web), 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(slowBody) } });
    const slowAnswer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      slow.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      slow.on('error', reject);
    });
    slow.flushHeaders();
    slow.write(slowBody.slice(0, 10));

    // an open SSE stream: the drain must end it with a retry hint rather than wait for it
    const sse = await fetch(`${url}/deny-list/events`, { headers: { Authorization: basic(web) } });
    expect(sse.status).toBe(200);
    const sseText = sse.text();

    await waitFor('a stream of refreshes', 20_000, () => succeeded >= 30);
    first.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    slow.end(slowBody.slice(10));
    expect(await slowAnswer).toMatchObject({ status: 200 });
    expect(await first.exited).toBe(0);
    expect((await sseText).trimEnd().split('\n').pop()).toMatch(/^retry: \d+$/);
    expect(first.output()).toContain('draining');

    const second = await start();
    url = second.url;
    restarted = true;
    await waitFor('refreshes on the restarted server', 20_000, () => failed.length > 0 || succeededAfterRestart >= 3 * CHAINS);
    stop = true;
    await Promise.all(running);

    expect(failed).toEqual([]);
    // the stream really did span the shutdown: some requests found nobody listening
    expect(unaccepted.length).toBeGreaterThan(0);
    // each chain's last successor works (the chains went on after the restart), and nothing was taken for a replay
    for (const token of tokens) expect(await post(url, '/token', web, { grant_type: 'refresh_token', refresh_token: token })).toMatchObject({ kind: 'response', status: 200 });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const store = database.open();
    try {
      expect(await new AuditRepository(store.db).query({ type: 'refresh.reuse_detected' })).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
