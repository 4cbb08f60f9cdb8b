// The server process (`node dist/src/main.js`): a cap on open connections (server.maxConnections,
// above the SSE stream cap), and one warning at start when the store is readable by other users.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../fleet/fleet.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');

let dir: string;
let dataDir: string;
let file: string;
let child: ChildProcess;
let out = '';
let port: number;
const sockets: net.Socket[] = [];

/** A raw connection; resolves once connected. */
function connection(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}

/** GET /healthz on a fresh connection: the status, or 'closed' when the server dropped it unanswered. */
async function healthz(): Promise<number | 'closed'> {
  const s = await connection();
  return new Promise((resolve) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve(m ? Number(m[1]) : 'closed');
    });
    s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-limits-'));
  // a store an older Tollgate (or a copy) left readable by everyone
  dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { mode: 0o755 });
  fs.chmodSync(dataDir, 0o755);
  file = path.join(dataDir, 'tollgate.db');
  fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o644);
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      server: { maxConnections: 4 },
      denyList: { maxStreams: 2, maxStreamsPerClient: 2 },
      passwords: { memoryCostKiB: 1024, timeCost: 1, parallelism: 1 },
      log: { level: 'info' },
    }),
  );
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  const env = { ...base, TOLLGATE_CONFIG: config, TOLLGATE_DATABASE: file, TOLLGATE_PORT: '0', TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url') };
  child = spawn(process.execPath, [MAIN], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  port = await waitFor('the server to listen', 20_000, () => {
    if (child.exitCode !== null) throw new Error(`the server exited ${child.exitCode}:\n${out}`);
    for (const line of out.split('\n')) if (line.includes('tollgate listening')) return (JSON.parse(line) as { port: number }).port;
    return undefined;
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the server process', () => {
  it('warns once at start that the store was readable by others, and makes its files 0600', () => {
    const warnings = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; paths?: Array<{ path: string; mode: string; action: string }> })
      .filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.paths).toEqual([
      { path: dataDir, mode: '0755', action: 'left' },
      { path: file, mode: '0644', action: 'tightened' },
    ]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
  });

  it('closes connections past server.maxConnections unanswered, and takes new ones once others close', async () => {
    // accepted in order: by the time the server accepts the fifth, it holds these four
    const held = [await connection(), await connection(), await connection(), await connection()];
    expect(await healthz()).toBe('closed');
    for (const s of held) s.destroy();
    await waitFor('a free connection', 10_000, async () => (await healthz()) === 200);
  });
});
