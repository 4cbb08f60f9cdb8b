// Runs the built admin CLI (bin/tollgate) as a child process against a temp SQLite file, the way
// an operator does: a clean environment, stdin a pipe (never a terminal).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/clock.js';
import { openStore } from '../../src/store/database.js';
import { type TestApp, createTestApp } from '../helpers.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'tollgate');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliSandbox {
  dir: string;
  database: string;
  kek: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], options?: { stdin?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** Runs a command that must succeed with --json and returns its parsed output. */
  json<T = unknown>(args: string[], options?: { stdin?: string }): Promise<T>;
  /** An in-process app on the same store and key-encryption key, with the real clock. */
  app(): Promise<TestApp>;
  cleanup(): void;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined); // the CLI may exit before reading stdin
    child.stdin.end(stdin);
  });
}

/** A temp dir with its own database, a random key-encryption key and cheap argon2 parameters. */
export function cliSandbox(): CliSandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-'));
  const database = path.join(dir, 'tollgate.db');
  const kek = crypto.randomBytes(32).toString('base64url');
  const config = path.join(dir, 'cheap.json');
  fs.writeFileSync(config, JSON.stringify({ passwords: { memoryCostKiB: 1024, timeCost: 1, parallelism: 1 }, log: { level: 'error' } }));
  // only what an operator's shell would pass: no TOLLGATE_* leaking in from the test runner
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, TOLLGATE_DATABASE: database, TOLLGATE_KEY_ENCRYPTION_KEY: kek, TOLLGATE_CONFIG: config };
  const sandbox: CliSandbox = {
    dir,
    database,
    kek,
    env,
    run: (args, options = {}) => runCli(args, { ...env, ...options.env }, options.stdin),
    async json<T>(args: string[], options: { stdin?: string } = {}): Promise<T> {
      const r = await sandbox.run([...args, '--json'], options);
      if (r.code !== 0) throw new Error(`tollgate ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    app: () =>
      createTestApp({
        store: openStore(database),
        clock: systemClock,
        config: { database: { url: database }, keys: { encryptionKey: kek } },
      }).then((t) => ({ ...t, close: async () => { await t.close(); await t.store.close(); } })),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  return sandbox;
}

/** A failed command: non-zero status, nothing on stdout, exactly one line on stderr. */
export function failureLine(r: CliResult): string {
  if (r.code === 0) throw new Error(`expected a failure, got exit 0: ${r.stdout}`);
  if (r.stdout !== '') throw new Error(`expected nothing on stdout, got ${JSON.stringify(r.stdout)}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${JSON.stringify(r.stderr)}`);
  return lines[0] as string;
}
