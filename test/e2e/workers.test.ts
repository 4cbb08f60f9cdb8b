// Issue 8 across processes: `tollgate serve --workers 2` (node:cluster; one SQLite file shared by
// two workers) keeps the refresh-rotation guarantees when the 20 racing requests are spread over
// both workers: one winner at grace 0, one shared successor at grace 10. And SIGTERM stops it all.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RefreshTokenMinter } from '../../src/tokens/refreshTokens.js';
import { PASSWORD, decodeJwt } from '../helpers.js';
import { type LogLine, type WorkersServer, startWorkers } from './workersServer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'tollgate');

type TokenBody = { access_token: string; refresh_token: string; error?: string };

let w: WorkersServer;
let env: NodeJS.ProcessEnv;
let url: string;
let logs: LogLine[];
const cli = (args: string[], stdin = '') => w.cli(args, stdin);
const until = <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms?: number) => w.until(what, probe, ms);

/** Reads the store the server is writing (WAL: a reader never blocks the workers). */
function query<T>(sql: string, ...params: unknown[]): T[] {
  const db = new SQLite(w.database, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const post = (body: Record<string, string>) =>
  fetch(`${url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as TokenBody,
  }));

const workerPids = () => w.workerPids();

async function signIn(clientId: string) {
  const res = await post({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: clientId });
  expect(res.status).toBe(200);
  return res.body;
}

/** 20 refreshes with one token at once; returns the answers and the worker pids that served them. */
async function race(clientId: string, token: string) {
  const before = logs.length;
  const results = await Promise.all(Array.from({ length: 20 }, () => post({ grant_type: 'refresh_token', refresh_token: token, client_id: clientId })));
  // request lines are written after the response: wait until all 20 have reached us
  const served = await until('the request logs of the race', () => {
    const lines = logs.slice(before).filter((l) => l.msg === 'request' && l.path === '/token');
    return lines.length >= 20 ? lines : undefined;
  });
  return { results, pids: new Set(served.map((l) => l.pid)) };
}

const familyRow = (sid: string) => query<{ revoked_at: number | null }>('select revoked_at from refresh_token_families where id = ?', sid)[0];
const liveTokens = (sid: string) => query<{ n: number }>('select count(*) as n from refresh_tokens where family_id = ? and spent_at is null', sid)[0]?.n;
const successorRows = (token: string) => query<{ token_hash: string }>('select token_hash from refresh_tokens where parent_hash = ?', RefreshTokenMinter.hash(token));
const sidOf = (body: { access_token: string }) => String(decodeJwt(body.access_token).payload.sid);

beforeAll(async () => {
  w = await startWorkers({
    prefix: 'tollgate-workers-',
    config: { passwords: { memoryCostKiB: 1024, timeCost: 1, parallelism: 1 }, log: { level: 'info' } },
    async setup(cli) {
      await cli(['users', 'add', 'alice', '--password-stdin'], `${PASSWORD}\n`);
      await cli(['clients', 'add', 'strict', '--public', '--grant', 'password', '--grant', 'refresh_token', '--json']);
      await cli(['clients', 'add', 'lenient', '--public', '--grant', 'password', '--grant', 'refresh_token', '--refresh-grace', '10', '--json']);
    },
  });
  ({ env, url, logs } = w);
});

afterAll(() => w?.stop());

describe('tollgate serve --workers 2', () => {
  it('runs two worker processes behind one port, on one store', async () => {
    const pids = workerPids();
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(w.child.pid);
    expect(logs.some((l) => l.msg === 'tollgate primary started' && l.pid === w.child.pid)).toBe(true);
    // one set of keys, created by the primary before the workers started
    expect(query<{ n: number }>("select count(*) as n from signing_keys where state = 'active'")[0]?.n).toBe(1);
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
  });

  it('took the per-client grace from the CLI (clients add --refresh-grace)', async () => {
    const lenient = JSON.parse(await cli(['clients', 'show', 'lenient', '--json'])) as { refresh_grace_seconds: number | null };
    const strict = JSON.parse(await cli(['clients', 'show', 'strict', '--json'])) as { refresh_grace_seconds: number | null };
    expect(lenient.refresh_grace_seconds).toBe(10);
    expect(strict.refresh_grace_seconds).toBeNull();
  });

  it('grace 0: exactly one of 20 concurrent refreshes wins across both workers, the rest get invalid_grant, and no spend is lost', async () => {
    const first = await signIn('strict');
    const sid = sidOf(first);
    const { results, pids } = await race('strict', first.refresh_token);
    expect(pids.size).toBe(2);
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(successorRows(first.refresh_token)).toHaveLength(1);
    // A loser read by a worker more than the cross-process tolerance after the spend committed is,
    // by the rule, a replay: the family may be revoked (README: concurrent refreshers use grace > 0).
    const revoked = familyRow(sid)?.revoked_at !== null;
    const next = await post({ grant_type: 'refresh_token', refresh_token: String(winners[0]?.body.refresh_token), client_id: 'strict' });
    expect(next.status).toBe(revoked ? 400 : 200);
    expect(query("select value from deny_list where type = 'sid' and value = ?", sid)).toEqual(revoked ? [{ value: sid }] : []);
  });

  for (const ms of [1, 10, 500, 1900]) {
    it(`grace 0: a spent token replayed ${ms} ms after the successor was received revokes the family, whichever worker it reaches`, async () => {
      const first = await signIn('strict');
      const sid = sidOf(first);
      const second = await post({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'strict' });
      expect(second.status).toBe(200);
      await new Promise((r) => setTimeout(r, ms));
      // a fresh connection: the cluster may hand it to either worker
      const replay = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Connection: 'close' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'strict' }),
      });
      expect(replay.status).toBe(400);
      expect(familyRow(sid)?.revoked_at).not.toBeNull();
      expect(query("select value from deny_list where type = 'sid' and value = ?", sid)).toEqual([{ value: sid }]);
      expect((await post({ grant_type: 'refresh_token', refresh_token: second.body.refresh_token, client_id: 'strict' })).status).toBe(400);
    });
  }

  it('grace 10: all 20 concurrent refreshes across both workers answer 200 with the same successor, and one successor is stored', async () => {
    const first = await signIn('lenient');
    const sid = sidOf(first);
    const { results, pids } = await race('lenient', first.refresh_token);
    expect(pids.size).toBe(2);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const successors = new Set(results.map((r) => r.body.refresh_token));
    expect(successors.size).toBe(1);
    for (const r of results) expect(sidOf(r.body)).toBe(sid);
    const rows = successorRows(first.refresh_token);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(RefreshTokenMinter.hash(String([...successors][0])));
    expect(liveTokens(sid)).toBe(1);
    expect(familyRow(sid)?.revoked_at).toBeNull();
    expect(query<{ n: number }>("select count(*) as n from audit_events where type = 'refresh.retry' and client_id = 'lenient'")[0]?.n).toBe(19);
  });

  it('exits non-zero instead of forking workers forever when they cannot start (the port is taken)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const child = spawn(process.execPath, [BIN, 'serve', '--workers', '2'], { cwd: ROOT, env: { ...env, TOLLGATE_PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 15_000);
      const code = await done;
      clearTimeout(timer);
      expect(code).toBe(1);
      expect(stderr).toMatch(/EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('stops the primary and both workers on SIGTERM', async () => {
    const pids = workerPids();
    const primary = w.child.pid;
    expect(primary).toBeDefined();
    process.kill(primary as number, 'SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    for (const pid of pids) expect(() => process.kill(pid as number, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(logs.filter((l) => l.msg === 'stopped').map((l) => l.pid).sort()).toEqual([...pids].sort());
  });
});
