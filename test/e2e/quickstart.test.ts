// The README quickstart, as a test: start the built server, add a user and a client with the CLI,
// get a token over HTTP (what curl does), refresh it, stop the server with SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../cli/run.js';
import { freePort } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';

async function waitForHealthy(url: string, server: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}: ${output()}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not become healthy: ${output()}`);
}

describe('README quickstart', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let server: ChildProcess;
  let logs = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-e2e-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      TOLLGATE_PORT: String(port),
      TOLLGATE_ISSUER: url,
      TOLLGATE_DATABASE: path.join(dir, 'tollgate.db'),
      TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'),
    };
    // what `npm start` runs
    server = spawn(process.execPath, ['dist/src/main.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.setEncoding('utf8').on('data', (d: string) => (logs += d));
    server.stderr?.setEncoding('utf8').on('data', (d: string) => (logs += d));
    exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
    await waitForHealthy(url, server, () => logs);
  }, 60_000);

  afterAll(async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('issues and refreshes a token for a user and a client added with the CLI, then drains on SIGTERM', async () => {
    // ./bin/tollgate users add alice --role RETRIEVE_TODOS --password-stdin
    const user = await runCli(['users', 'add', 'alice', '--role', 'RETRIEVE_TODOS', '--password-stdin', '--json'], env, `${PASSWORD}\n`);
    expect(user.stderr).toBe('');
    expect(user.code).toBe(0);
    const { id: sub } = JSON.parse(user.stdout) as { id: string };

    // ./bin/tollgate clients add todo-web --grant password --grant refresh_token --scope "todos:read" --audience todo-api
    const added = await runCli(['clients', 'add', 'todo-web', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'todos:read', '--audience', 'todo-api', '--json'], env);
    expect(added.code).toBe(0);
    const client = JSON.parse(added.stdout) as { client_id: string; client_secret: string };

    // curl -u todo-web:$SECRET -d grant_type=password -d username=alice --data-urlencode password=… $URL/token
    const auth = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
    const token = async (params: Record<string, string>) => {
      const res = await fetch(`${url}/token`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
      return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as Record<string, string> };
    };
    const signIn = await token({ grant_type: 'password', username: 'alice', password: PASSWORD });
    expect(signIn.status).toBe(200);
    expect(signIn.cacheControl).toBe('no-store');
    expect(signIn.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'todos:read' });

    // what a resource server does: verify against the published JWKS
    const jwks = createRemoteJWKSet(new URL(`${url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(String(signIn.body.access_token), jwks, { issuer: url, audience: 'todo-api', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub, client_id: 'todo-web', scope: 'todos:read', roles: ['RETRIEVE_TODOS'] });

    // curl -u todo-web:$SECRET -d grant_type=refresh_token -d refresh_token=… $URL/token
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: String(signIn.body.refresh_token) });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(signIn.body.refresh_token);
    const again = await jwtVerify(String(refreshed.body.access_token), jwks, { issuer: url, audience: 'todo-api' });
    expect(again.payload.sid).toBe(payload.sid);

    // the CLI and the running server share the store: a disabled user is refused at once
    expect((await runCli(['users', 'disable', 'alice'], env)).code).toBe(0);
    const refused = await token({ grant_type: 'refresh_token', refresh_token: String(refreshed.body.refresh_token) });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');

    // the server's logs are JSON lines and never carry a secret
    for (const s of [PASSWORD, client.client_secret, signIn.body.refresh_token, signIn.body.access_token]) expect(logs).not.toContain(String(s));

    server.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
