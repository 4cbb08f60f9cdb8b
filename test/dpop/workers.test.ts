// RFC 9449 §11.1 across processes: `tollgate serve --workers 2` (one SQLite file, two worker
// processes) accepts a DPoP proof once, whichever worker each copy of it reaches. The client is
// set up with the CLI's --require-dpop, as an operator would.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, generateProof } from 'dpop';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run.js';
import { freePort } from '../helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'tollgate');

type LogLine = { msg?: string; pid?: number; path?: string };

let dir: string;
let env: NodeJS.ProcessEnv;
let url: string;
let secret: string;
let server: ChildProcess | undefined;
let exited: Promise<unknown>;
const logs: LogLine[] = [];
let output = '';

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, env, '');
  if (r.code !== 0) throw new Error(`tollgate ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server output:\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const workerPids = () => [...new Set(logs.filter((l) => l.msg === 'tollgate listening').map((l) => l.pid))];

/** A token request on a fresh connection, so the cluster may hand it to either worker. */
const token = (proof?: string) =>
  fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}`,
      Connection: 'close',
      ...(proof ? { DPoP: proof } : {}),
    },
    body: 'grant_type=client_credentials',
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; error_description?: string; token_type?: string } }));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-dpop-workers-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ log: { level: 'info' } }));
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    TOLLGATE_CONFIG: config,
    TOLLGATE_DATABASE: path.join(dir, 'tollgate.db'),
    TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'),
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_PORT: String(port),
    TOLLGATE_ISSUER: url,
  };
  secret = (JSON.parse(await cli(['clients', 'add', 'svc', '--grant', 'client_credentials', '--require-dpop', '--json'])) as { client_secret: string }).client_secret;

  const child = spawn(process.execPath, [BIN, 'serve', '--workers', '2'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  server = child;
  exited = new Promise((resolve) => child.on('exit', resolve));
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (output += d));
  await until('two workers listening', () => (workerPids().length === 2 ? true : undefined));
  await until('/readyz', async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
});

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('DPoP with tollgate serve --workers 2', () => {
  it('shows the policy set with clients add --require-dpop, and enforces it', async () => {
    expect(JSON.parse(await cli(['clients', 'show', 'svc', '--json']))).toMatchObject({ client_id: 'svc', require_dpop: true });
    const res = await token();
    expect(res).toEqual({ status: 400, body: { error: 'invalid_dpop_proof', error_description: 'this client must send a DPoP proof with every token request' } });
  });

  it('accepts one proof once across both workers: 20 concurrent copies, one 200', async () => {
    const keys = await generateKeyPair('ES256');
    const proof = await generateProof(keys, `${url}/token`, 'POST');
    const before = logs.length;
    const results = await Promise.all(Array.from({ length: 20 }, () => token(proof)));
    const served = await until('the request logs', () => {
      const lines = logs.slice(before).filter((l) => l.msg === 'request' && l.path === '/token');
      return lines.length >= 20 ? lines : undefined;
    });
    expect(new Set(served.map((l) => l.pid)).size).toBe(2);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.find((r) => r.status === 200)?.body.token_type).toBe('DPoP');
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP proof jti was already used' });
  });

  it('turns the policy off with clients update --no-require-dpop', async () => {
    expect(JSON.parse(await cli(['clients', 'update', 'svc', '--no-require-dpop', '--json']))).toMatchObject({ require_dpop: false });
    // the running workers see the change within the client cache's second
    await until('the policy change', async () => ((await token()).status === 200 ? true : undefined));
  });
});
