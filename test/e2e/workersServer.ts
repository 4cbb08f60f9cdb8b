// `tollgate serve --workers N` as an operator starts it: a temp folder, a config file, a SQLite
// store set up with the CLI, the server in its own process group (so stop() ends the primary and
// every worker at once), its JSON log lines collected, and a poll-wait that shows the server's
// output when it times out.
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../cli/run.js';
import { freePort } from '../helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'tollgate');

export type LogLine = { msg?: string; pid?: number; path?: string; status?: number };

export interface WorkersServer {
  dir: string;
  database: string;
  env: NodeJS.ProcessEnv;
  url: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs: LogLine[];
  /** Everything the server wrote so far. */
  output(): string;
  /** The CLI's stdout on the same store; a non-zero exit fails with its stderr. */
  cli(args: string[], stdin?: string): Promise<string>;
  until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms?: number): Promise<T>;
  workerPids(): Array<number | undefined>;
  stop(): Promise<void>;
}

export async function startWorkers(options: { prefix: string; workers?: number; config: Record<string, unknown>; setup(cli: WorkersServer['cli']): Promise<void> }): Promise<WorkersServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), options.prefix));
  const database = path.join(dir, 'tollgate.db');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify(options.config));
  // only what an operator's shell would pass: nothing leaks in from the test runner
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    TOLLGATE_CONFIG: config,
    TOLLGATE_DATABASE: database,
    TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'),
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_PORT: String(port),
    TOLLGATE_ISSUER: url,
  };
  const cli = async (args: string[], stdin = '') => {
    const r = await runCli(args, env, stdin);
    if (r.code !== 0) throw new Error(`tollgate ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  await options.setup(cli);

  const child = spawn(process.execPath, [BIN, 'serve', '--workers', String(options.workers ?? 2)], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const logs: LogLine[] = [];
  let output = '';
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

  const until = async <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server output:\n${output.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const workerPids = () => [...new Set(logs.filter((l) => l.msg === 'tollgate listening').map((l) => l.pid))];
  const server: WorkersServer = {
    dir,
    database,
    env,
    url,
    child,
    exited,
    logs,
    output: () => output,
    cli,
    until,
    workerPids,
    async stop() {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await until('the workers listening', () => (workerPids().length === (options.workers ?? 2) ? true : undefined));
  await until('/readyz', async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
  return server;
}
