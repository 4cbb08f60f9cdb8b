#!/usr/bin/env node
// npm run bench [-- --quick] [-- --json FILE] ... : Tollgate's hot paths under autocannon, next to
// the limits of this machine and to node-oidc-provider. Each path takes turns, one second at a
// time, with what it is compared with, so every figure is read as a ratio that holds on a noisy
// machine. See bench/README.md for what each column means.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, cannon, commandOf, cpuSeconds, cycle, firstJsonLine, freePort, machineBusySeconds, memoryNow, parentOf, percentile, processTree, sleep, startProcess, waitReady, watchMemory } from './lib.mjs';
import pg from 'pg';
import { formatSummary, summarize } from './profile.mjs';
import { mallocEnv } from '../dist/src/mallocEnv.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = path.join(ROOT, 'bench');

// ---------------------------------------------------------------------------------------------
// options

const USAGE = `usage: npm run bench -- [options]
  --quick              a smoke run: 2 s per path (default 5 s)
  --duration S         seconds measured per path and per server it is compared with (after a 1 s warm-up)
  --connections N      concurrent connections (default 50; the password grant uses fewer, see README)
  --json [FILE]        also write the results as JSON (default FILE: bench-results.json)
  --only a,b           run only these paths or sections (${'password refresh client_credentials introspect_access introspect_refresh revoke_access revoke_refresh jwks deny_list limits peer workers postgres'})
  --skip a,b           leave these out
  --cpu-prof [DIR]     profile the single Tollgate server (node --cpu-prof) and print where its time went
  --log-level LEVEL    the server's log level (default: the configured one)
  --postgres URL       a PostgreSQL server for the postgres section (default: TOLLGATE_TEST_POSTGRES_URL);
                       the bench creates a database of its own there and drops it at the end
  --keep               keep the temporary directory (database, server logs)`;

function parseArgs(argv) {
  const o = { seconds: 5, warmup: 1, connections: 50, json: undefined, only: undefined, skip: new Set(), cpuProf: undefined, logLevel: undefined, keep: false, quick: false, postgres: undefined };
  const value = (i, name) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const optional = () => (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : undefined);
    if (a === '--quick') {
      o.quick = true;
      o.seconds = 2;
    } else if (a === '--duration') o.seconds = Number(value(i++, a));
    else if (a === '--connections') o.connections = Number(value(i++, a));
    else if (a === '--json') o.json = optional() ?? 'bench-results.json';
    else if (a === '--only') o.only = new Set(value(i++, a).split(','));
    else if (a === '--skip') o.skip = new Set(value(i++, a).split(','));
    else if (a === '--cpu-prof') o.cpuProf = optional() ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-prof-'));
    else if (a === '--log-level') o.logLevel = value(i++, a);
    else if (a === '--postgres') o.postgres = value(i++, a);
    else if (a === '--keep') o.keep = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (!(o.seconds >= 1) || !Number.isInteger(o.seconds)) throw new Error('--duration takes whole seconds ≥ 1');
  if (!(o.connections >= 1)) throw new Error('--connections takes a number ≥ 1');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const wanted = (key) => (!opts.only || opts.only.has(key)) && !opts.skip.has(key);
const note = (s) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------
// the build: `npm ci` builds dist/; rebuild when a source file is newer

function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt() {
  const main = path.join(ROOT, 'dist', 'src', 'main.js');
  const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  const newest = Math.max(newestSourceMs(path.join(ROOT, 'src')), newestSourceMs(path.join(ROOT, 'migrations')));
  if (built >= newest) return;
  note('building dist/ (tsc -p tsconfig.build.json) ...');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status === 0) return;
  if (built === 0) throw new Error('the build failed and there is no dist/ to benchmark');
  note('warning: the build failed; benchmarking the dist/ that is already there');
}

// ---------------------------------------------------------------------------------------------
// helpers for the paths

const form = (o) => new URLSearchParams(o).toString();
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
// a pool's first fill covers the warm-up at up to this rate; the rest is sized from the warm-up
const WARMUP_RATE_GUESS = 5000;

const expectJson = (what, pred) => (json) => (json !== undefined && pred(json) ? undefined : `expected ${what}, got ${JSON.stringify(json)?.slice(0, 200)}`);
const isJwt = (s) => typeof s === 'string' && s.split('.').length === 3;
const tokenResponse = expectJson('a token response', (j) => isJwt(j.access_token) && j.token_type === 'Bearer');
const active = expectJson('{"active": true, ...}', (j) => j.active === true);

/** After a revocation run: one of its tokens, introspected, must be inactive (the run did revoke). */
const inactiveAt = (url, headers) => async (token) => {
  const r = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token }) });
  const json = await r.json().catch(() => undefined);
  return r.status === 200 && json?.active === false ? undefined : `a revoked token is still active: ${r.status} ${JSON.stringify(json)}`;
};

/** One request before the run: the path answers what it should, so the figures are of real work. */
async function probe(request, body, expect) {
  const headers = request.method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded', ...request.headers } : request.headers;
  const r = await fetch(request.url, { method: request.method, headers, body });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the status decides
  }
  if (r.status !== 200) return `${r.status} ${text.slice(0, 200)}`;
  return expect ? expect(json) : undefined;
}

/**
 * A lane: one kind of request against one server, ready to run in slices. A pool lane mints its
 * first fill for the warm-up; after the warm-up it is topped up to 3 times what the warm-up rate
 * says the measured slices will use. Given several bases (instances of one fleet), the lane splits
 * its connections evenly between them and drives them all at once from one pool, so the total
 * concurrency is the same as against one server and no token is sent twice.
 */
async function lane(subject, base, spec) {
  const connections = spec.connections ?? opts.connections;
  const bases = Array.isArray(base) ? base : [base];
  let nextBody;
  let pool;
  if (spec.mint) {
    pool = new Pool();
    pool.add(await spec.mint(WARMUP_RATE_GUESS * opts.warmup + connections * 2));
    nextBody = () => spec.body(pool.take());
  } else if (spec.cycle) {
    const next = cycle(spec.cycle);
    nextBody = () => spec.body(next());
  }
  const requests = bases.map((b, i) => ({
    url: b + spec.path,
    method: spec.method ?? 'POST',
    headers: spec.headers ?? {},
    body: spec.fixedBody,
    nextBody,
    // 50 over 2 instances: 25 each; a remainder goes to the first ones
    connections: Math.floor(connections / bases.length) + (i < connections % bases.length ? 1 : 0),
  }));
  let probed;
  for (const request of requests) probed ??= await probe(request, nextBody ? nextBody() : spec.fixedBody, spec.expect);
  if (probed) note(`    ${subject}: probe failed: ${probed}`);
  // all instances at once; the rate is every response over the longest of the runs
  const run = async (seconds) => {
    const runs = await Promise.all(requests.map((r) => cannon({ ...r, seconds })));
    if (runs.length === 1) return runs[0];
    const merged = { responses: 0, seconds: 0, errors: 0, codes: {}, latencies: [] };
    for (const r of runs) {
      merged.responses += r.responses;
      merged.seconds = Math.max(merged.seconds, r.seconds);
      merged.errors += r.errors;
      for (const [code, n] of Object.entries(r.codes)) merged.codes[code] = (merged.codes[code] ?? 0) + n;
      for (const ms of r.latencies) merged.latencies.push(ms);
    }
    merged.rps = merged.responses / merged.seconds;
    return merged;
  };
  return {
    subject,
    spec,
    connections,
    async warm() {
      const w = await run(opts.warmup);
      if (pool) {
        // the warm-up runs colder than the measurement (with --workers, much colder): 3 times what
        // its rate asks for, so a pool never runs dry (a reused token would count as an error)
        const want = Math.ceil(Math.max(w.rps, 200) * 3 * (opts.seconds + 1)) + connections * 4;
        if (pool.remaining < want) pool.add(await spec.mint(want - pool.remaining));
        pool.dry = false;
        this.firstMeasured = pool.items[pool.next];
      }
    },
    slice: run,
    async finish() {
      const confirmed = spec.confirm && this.firstMeasured !== undefined ? await spec.confirm(this.firstMeasured) : undefined;
      if (confirmed) note(`    ${subject}: check after the run failed: ${confirmed}`);
      const problem = probed ? `probe: ${probed}` : confirmed;
      return { poolDry: pool ? pool.dry : undefined, ...(problem ? { problem } : {}) };
    },
  };
}

/** A lane that is not HTTP: raw argon2 verifies in a process of their own (bench/limits.mjs). */
function argon2Lane(passwords) {
  return {
    subject: 'argon2',
    spec: { key: 'argon2', label: 'argon2id verify' },
    connections: passwords.maxConcurrentHashes,
    warm: async () => {},
    async slice(seconds) {
      const r = limit(['argon2', seconds, passwords.maxConcurrentHashes, passwords.memoryCostKiB, passwords.timeCost, passwords.parallelism]);
      return { responses: r.ops, seconds: r.seconds, errors: 0, codes: {}, latencies: [] };
    },
    finish: async () => ({}),
  };
}

function limit(args) {
  // the server's malloc settings, so raw argon2 runs under the same allocator
  const r = spawnSync(process.execPath, [path.join(BENCH, 'limits.mjs'), ...args.map(String)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...mallocEnv() } });
  if (r.status !== 0) throw new Error(`limits.mjs ${args[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/**
 * Measures lanes that will be compared with each other: each is warmed up, then they take turns in
 * one-second slices until each has had `opts.seconds`, so a burst of load from elsewhere on the
 * machine falls on all of them alike. Latency percentiles are over every 2xx response of the slices.
 */
async function runGroup(lanes, pids) {
  for (const l of lanes) await l.warm();
  const acc = lanes.map(() => ({ responses: 0, seconds: 0, errors: 0, codes: {}, latencies: [] }));
  for (let round = 0; round < opts.seconds; round++) {
    for (const [i, l] of lanes.entries()) {
      const r = await l.slice(1);
      const a = acc[i];
      a.responses += r.responses;
      a.seconds += r.seconds;
      a.errors += r.errors;
      for (const [code, n] of Object.entries(r.codes)) a.codes[code] = (a.codes[code] ?? 0) + n;
      for (const ms of r.latencies) a.latencies.push(ms);
    }
  }
  const rows = [];
  for (const [i, l] of lanes.entries()) {
    const a = acc[i];
    const row = {
      subject: l.subject,
      key: l.spec.key,
      label: l.spec.label,
      connections: l.connections,
      rps: a.responses / Math.max(a.seconds, 0.001),
      responses: a.responses,
      seconds: Math.round(a.seconds * 100) / 100,
      p50: percentile(a.latencies, 0.5),
      p99: percentile(a.latencies, 0.99),
      errors: a.errors,
      codes: a.codes,
      ...(await l.finish()),
    };
    // which path grows a server: its resident set right after, and the high-water mark so far
    if (pids[l.subject]) Object.assign(row, memoryNow(pids[l.subject]));
    note(`    ${row.subject}: ${Math.round(row.rps)}/s${l.subject === 'argon2' ? '' : `, p50 ${row.p50} ms, p99 ${row.p99} ms, errors ${row.errors}${row.errors ? ` ${JSON.stringify(row.codes)}` : ''}`}${row.rssMb ? `, RSS ${row.rssMb.toFixed(0)} MB` : ''}`);
    rows.push(row);
  }
  return rows;
}

/** The environment of a Tollgate process: ours, without any TOLLGATE_* of the caller's. */
function tollgateEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  return { ...env, ...extra };
}

/** A server's environment on `port`, with the malloc arena setting `npm start` uses. */
function serverEnv(env, port) {
  return { ...env, ...mallocEnv(), TOLLGATE_PORT: String(port) };
}

const started = new Set();
function track(proc) {
  started.add(proc);
  proc.exitedPromise.then(() => started.delete(proc));
  return proc;
}
async function stopAll() {
  await Promise.all([...started].map((p) => p.stop(5000)));
}
process.once('SIGINT', () => {
  void stopAll().then(() => process.exit(130));
});

// ---------------------------------------------------------------------------------------------
// the run

const PATHS = ['password', 'refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'revoke_access', 'revoke_refresh', 'jwks', 'deny_list'];
// reads first, so the deny list and the store are as seeded; the writes after
const RUN_ORDER = ['jwks', 'deny_list', 'introspect_access', 'introspect_refresh', 'client_credentials', 'refresh', 'password', 'revoke_access', 'revoke_refresh'];
// what each path is held against (issue 6)
const VS_KOA = new Set(['refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'jwks']);
const VS_PEER = new Set(['client_credentials', 'introspect_access', 'revoke_access', 'jwks']);

async function main() {
  ensureBuilt();
  const seed = await import('./seed.mjs');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const results = { when: new Date().toISOString(), machine, options: { seconds: opts.seconds, warmupSeconds: opts.warmup, connections: opts.connections, quick: opts.quick } };
  const env = tollgateEnv({
    TOLLGATE_DATABASE: path.join(tmp, 'tollgate.db'),
    TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'),
    TOLLGATE_HOST: '127.0.0.1',
    ...(opts.logLevel ? { TOLLGATE_LOG_LEVEL: opts.logLevel } : {}),
  });
  note(`temporary directory ${tmp}`);

  // the driver keeps its own connection to the store for minting pools (WAL: the server is not blocked)
  const bench = await seed.openBench(env);
  const who = await seed.seedPrincipals(bench);
  await seed.seedDenyList(bench, 100);
  const passwords = bench.config.passwords;
  const appAuth = { authorization: basic(who.app.id, who.app.secret) };
  const serviceAuth = { authorization: basic(who.service.id, who.service.secret) };
  const ccBody = form({ grant_type: 'client_credentials', scope: 'api:read' });
  const mintRefresh = (count) => seed.mintRefreshTokens(bench, { userId: who.user.id, clientId: who.app.id, count });
  const readTokens = async () => ({
    access: await seed.mintAccessTokens(bench, { sub: who.user.id, clientId: who.app.id, sid: crypto.randomUUID(), count: 100 }),
    refresh: await mintRefresh(100),
  });
  const hinted = (hint) => (token) => form({ token, token_type_hint: hint });

  const tollgateSpecs = (read, base) => ({
    password: {
      key: 'password',
      label: 'password grant',
      path: '/token',
      headers: appAuth,
      fixedBody: form({ grant_type: 'password', username: who.user.username, password: who.user.password }),
      // two per hashing slot keeps every slot busy; more would only queue (and past the queue, 503 by design)
      connections: Math.min(opts.connections, passwords.maxConcurrentHashes * 2, passwords.maxConcurrentHashes + passwords.maxQueuedHashes),
      expect: tokenResponse,
    },
    refresh: { key: 'refresh', label: 'refresh_token grant', path: '/token', headers: appAuth, mint: mintRefresh, body: (t) => form({ grant_type: 'refresh_token', refresh_token: t }), expect: tokenResponse },
    client_credentials: { key: 'client_credentials', label: 'client_credentials', path: '/token', headers: serviceAuth, fixedBody: ccBody, expect: tokenResponse },
    introspect_access: { key: 'introspect_access', label: 'introspect access token', path: '/introspect', headers: serviceAuth, cycle: read.access, body: hinted('access_token'), expect: active },
    introspect_refresh: { key: 'introspect_refresh', label: 'introspect refresh token', path: '/introspect', headers: serviceAuth, cycle: read.refresh, body: hinted('refresh_token'), expect: active },
    revoke_access: {
      key: 'revoke_access',
      label: 'revoke access token',
      path: '/revoke',
      headers: serviceAuth,
      mint: (count) => seed.mintAccessTokens(bench, { sub: who.service.id, clientId: who.service.id, count }),
      body: hinted('access_token'),
      confirm: inactiveAt(`${base}/introspect`, serviceAuth),
    },
    revoke_refresh: { key: 'revoke_refresh', label: 'revoke refresh token', path: '/revoke', headers: appAuth, mint: mintRefresh, body: hinted('refresh_token'), confirm: inactiveAt(`${base}/introspect`, serviceAuth) },
    jwks: { key: 'jwks', label: 'JWKS', method: 'GET', path: '/.well-known/jwks.json', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
    deny_list: { key: 'deny_list', label: 'deny-list feed (100 entries)', method: 'GET', path: '/deny-list', headers: serviceAuth, expect: expectJson('100 entries', (j) => j.entries?.length === 100) },
  });

  const startTollgate = async (args, nodeArgs, log) => {
    const port = await freePort();
    const proc = track(startProcess(process.execPath, [...nodeArgs, ...args], { env: serverEnv(env, port), cwd: ROOT, stdoutFile: path.join(tmp, log) }));
    await waitReady(proc, `http://127.0.0.1:${port}/readyz`);
    return { proc, base: `http://127.0.0.1:${port}` };
  };

  try {
    const keys = RUN_ORDER.filter(wanted);
    const withLimits = wanted('limits');
    const withPeer = wanted('peer');
    if (keys.length > 0) {
      // every server the paths are compared with is up for the whole phase; an idle one costs nothing
      const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [];
      note(`Tollgate: node ${[...nodeArgs, 'dist/src/main.js'].join(' ')}`);
      const tollgate = await startTollgate([path.join(ROOT, 'dist', 'src', 'main.js')], nodeArgs, 'tollgate.log');
      const tollgateMemory = watchMemory(tollgate.proc.pid);
      const pids = { tollgate: tollgate.proc.pid };
      let koa;
      let koaMemory;
      if (withLimits && keys.some((k) => VS_KOA.has(k))) {
        const proc = track(startProcess(process.execPath, [path.join(BENCH, 'bareKoa.mjs')], { cwd: ROOT }));
        koa = { proc, base: `http://127.0.0.1:${(await firstJsonLine(proc)).port}` };
        koaMemory = watchMemory(proc.pid);
        pids.koa = proc.pid;
      }
      let peer;
      let peerMemory;
      if (withPeer && keys.some((k) => VS_PEER.has(k))) {
        note('peer: node-oidc-provider');
        const proc = track(startProcess(process.execPath, [path.join(BENCH, 'peer.mjs')], { cwd: ROOT }));
        const info = await firstJsonLine(proc);
        const base = `http://127.0.0.1:${info.port}`;
        const auth = { authorization: basic(info.clientId, info.clientSecret) };
        // opaque client_credentials tokens: the only access tokens v9 introspects or revokes
        const mint = async (count) => {
          const out = [];
          let left = count;
          const worker = async () => {
            while (left > 0) {
              left--;
              const r = await fetch(`${base}/token`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: ccBody });
              if (r.status !== 200) throw new Error(`peer token request: ${r.status} ${await r.text()}`);
              out.push((await r.json()).access_token);
            }
          };
          await Promise.all(Array.from({ length: 16 }, worker));
          return out;
        };
        peer = {
          proc,
          base,
          specs: {
            jwks: { key: 'jwks', label: 'JWKS', method: 'GET', path: '/jwks', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
            introspect_access: { key: 'introspect_access', label: 'introspect access token (opaque)', path: '/token/introspection', headers: auth, cycle: await mint(100), body: hinted('access_token'), expect: active },
            client_credentials: { key: 'client_credentials', label: 'client_credentials (JWT)', path: '/token', headers: auth, fixedBody: form({ grant_type: 'client_credentials', scope: 'api:read', resource: info.resource }), expect: tokenResponse },
            revoke_access: { key: 'revoke_access', label: 'revoke access token (opaque)', path: '/token/revocation', headers: auth, mint, body: hinted('access_token'), confirm: inactiveAt(`${base}/token/introspection`, auth) },
          },
        };
        peerMemory = watchMemory(proc.pid);
        pids.peer = proc.pid;
      }

      const specs = tollgateSpecs(await readTokens(), tollgate.base);
      const koaSpec = { key: 'koa', label: 'bare Koa POST (form in, JSON out)', path: '/token', headers: serviceAuth, fixedBody: ccBody };
      const rows = { tollgate: [], koa: [], argon2: [], peer: [] };
      for (const key of keys) {
        const lanes = [await lane('tollgate', tollgate.base, specs[key])];
        if (koa && VS_KOA.has(key)) lanes.push(await lane('koa', koa.base, koaSpec));
        if (withLimits && key === 'password') lanes.push(argon2Lane(passwords));
        if (peer && VS_PEER.has(key)) lanes.push(await lane('peer', peer.base, peer.specs[key]));
        note(`  ${specs[key].label}: ${lanes.map((l) => l.subject).join(' / ')} in turns`);
        for (const row of await runGroup(lanes, pids)) {
          if (row.subject !== 'tollgate') row.pairedWith = key;
          rows[row.subject].push(row);
        }
      }

      results.tollgate = { rows: PATHS.map((k) => rows.tollgate.find((r) => r.key === k)).filter(Boolean), peakRssMb: tollgateMemory.stop().peakProcessMb };
      await tollgate.proc.stop();
      if (tollgate.proc.code !== 0) note(`warning: the server exited with ${tollgate.proc.code}: ${tollgate.proc.stderr.slice(-500)}`);
      if (opts.cpuProf) results.profiles = fs.readdirSync(opts.cpuProf).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(opts.cpuProf, f));
      if (koa) {
        results.koa = { rows: rows.koa, peakRssMb: koaMemory.stop().peakProcessMb };
        await koa.proc.stop();
      }
      if (rows.argon2.length > 0) results.argon2 = { rows: rows.argon2, memoryCostKiB: passwords.memoryCostKiB, timeCost: passwords.timeCost, parallelism: passwords.parallelism };
      if (peer) {
        results.peer = { rows: rows.peer, peakRssMb: peerMemory.stop().peakProcessMb };
        await peer.proc.stop();
      }
    }

    if (withLimits) {
      note(`limit: ES256 JWT signing with jose, ${opts.connections} in flight, alone ...`);
      results.es256 = { ...limit(['es256', opts.seconds, opts.connections]), concurrency: opts.connections };
      note(`    ${Math.round(results.es256.perSecond)} signatures/s`);
    }

    // --- tollgate serve --workers 1 and --workers 2, both up, in turns ---
    if (wanted('workers')) {
      const one = await startTollgate([path.join(ROOT, 'bin', 'tollgate'), 'serve', '--workers', '1'], [], 'tollgate-workers-1.log');
      const two = await startTollgate([path.join(ROOT, 'bin', 'tollgate'), 'serve', '--workers', '2'], [], 'tollgate-workers-2.log');
      // every worker listening, not just the first
      for (let i = 0; i < 100 && processTree(two.proc.pid).length < 3; i++) await sleep(100);
      await sleep(1000);
      note('Tollgate: bin/tollgate serve --workers 1 / --workers 2');
      const memory = { workers1: watchMemory(one.proc.pid), workers2: watchMemory(two.proc.pid) };
      const pids = { workers1: one.proc.pid, workers2: two.proc.pid };
      const read = await readTokens();
      const specs1 = tollgateSpecs(read, one.base);
      const specs2 = tollgateSpecs(read, two.base);
      const rows = { workers1: [], workers2: [] };
      for (const key of ['refresh', 'introspect_access']) {
        note(`  ${specs1[key].label}: --workers 1 / --workers 2 in turns`);
        // processor time per turn: on a 2-core machine shared with the load generator it is what explains the factor
        const lanes = [withCpu(await lane('workers1', one.base, specs1[key]), { server: () => processTree(one.proc.pid) }), withCpu(await lane('workers2', two.base, specs2[key]), { server: () => processTree(two.proc.pid) })];
        for (const row of await runGroup(lanes, pids)) rows[row.subject].push(row);
      }
      results.workers = {};
      for (const [n, name, server] of [[1, 'workers1', one], [2, 'workers2', two]]) {
        const rss = memory[name].stop();
        await server.proc.stop();
        results.workers[n] = { rows: rows[name], peakRssMb: rss.peakTotalMb, processes: rss.processes };
      }
    }

    // --- PostgreSQL: one instance, and two instances on the same database, in turns ---
    if (wanted('postgres')) {
      const server = opts.postgres ?? process.env.TOLLGATE_TEST_POSTGRES_URL;
      if (server) results.postgres = await postgresSection(server, tmp, seed);
      else {
        const reason = 'no PostgreSQL server (set TOLLGATE_TEST_POSTGRES_URL or pass --postgres URL; scripts/with-postgres.sh npm run bench -- --only postgres makes a throwaway one)';
        note(`postgres: skipped: ${reason}`);
        results.postgres = { skipped: reason };
      }
    }
  } finally {
    await stopAll();
    await bench.close().catch(() => undefined);
    if (opts.keep) note(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }

  results.checks = checks(results);
  process.stdout.write(`\n${report(results)}\n`);
  if (results.profiles) for (const file of results.profiles) process.stdout.write(`\n${formatSummary(summarize(file, 20))}\n`);
  if (opts.json) {
    fs.writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
    note(`results written to ${path.resolve(opts.json)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (issue 9): a fleet on one database

const PG_PATHS = ['refresh', 'introspect_access'];

/**
 * Creates a database of our own on `serverUrl`, seeds it as the SQLite store is seeded, starts two
 * Tollgate instances on it (node dist/src/main.js, as `npm start` does) and measures the refresh
 * grant and access-token introspection against instance A alone, then against A and B together
 * with the same connections split between them, in turns. The database is dropped at the end.
 */
async function postgresSection(serverUrl, tmp, seed) {
  const name = `tollgate_bench_${crypto.randomBytes(6).toString('hex')}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect().catch((e) => {
    const shown = new URL(serverUrl);
    shown.password = '';
    throw new Error(`postgres: cannot connect to ${shown}: ${e.message}`);
  });
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  // the server's processes, when it runs on this machine: the parent of our backend is the postmaster
  const backend = (await admin.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const postmaster = commandOf(backend) === 'postgres' && commandOf(parentOf(backend)) === 'postgres' ? parentOf(backend) : undefined;
  await admin.query(`CREATE DATABASE ${name}`);
  note(`postgres: PostgreSQL ${version}, database ${name}`);
  const env = tollgateEnv({
    TOLLGATE_DATABASE: url.toString(),
    TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'),
    TOLLGATE_HOST: '127.0.0.1',
    ...(opts.logLevel ? { TOLLGATE_LOG_LEVEL: opts.logLevel } : {}),
  });
  const instances = [];
  let bench;
  try {
    // the driver's own pool on the database: it migrates, seeds, and mints the pools during the run
    bench = await seed.openBench(env);
    const who = await seed.seedPrincipals(bench);
    await seed.seedDenyList(bench, 100);
    const appAuth = { authorization: basic(who.app.id, who.app.secret) };
    const serviceAuth = { authorization: basic(who.service.id, who.service.secret) };
    const access = await seed.mintAccessTokens(bench, { sub: who.user.id, clientId: who.app.id, sid: crypto.randomUUID(), count: 100 });
    const specs = {
      refresh: {
        key: 'refresh',
        label: 'refresh_token grant',
        path: '/token',
        headers: appAuth,
        mint: (count) => seed.mintRefreshTokens(bench, { userId: who.user.id, clientId: who.app.id, count }),
        body: (t) => form({ grant_type: 'refresh_token', refresh_token: t }),
        expect: tokenResponse,
      },
      introspect_access: { key: 'introspect_access', label: 'introspect access token', path: '/introspect', headers: serviceAuth, cycle: access, body: (t) => form({ token: t, token_type_hint: 'access_token' }), expect: active },
    };

    for (const id of ['a', 'b']) {
      const port = await freePort();
      const proc = track(
        startProcess(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
          env: serverEnv(env, port),
          cwd: ROOT,
          stdoutFile: path.join(tmp, `tollgate-postgres-${id}.log`),
        }),
      );
      instances.push({ id, proc, base: `http://127.0.0.1:${port}` });
      await waitReady(proc, `http://127.0.0.1:${port}/readyz`);
    }
    const [a, b] = instances;
    note('Tollgate on PostgreSQL: node dist/src/main.js, instance A / instances A+B (same database)');
    const memory = instances.map((i) => watchMemory(i.proc.pid));
    const rows = { pg1: [], pg2: [] };
    const processes = { a: () => processTree(a.proc.pid), b: () => processTree(b.proc.pid), ...(postmaster ? { postgres: () => processTree(postmaster) } : {}) };
    for (const key of PG_PATHS) {
      note(`  ${specs[key].label}: one instance / two instances in turns`);
      const lanes = [await lane('pg1', a.base, specs[key]), await lane('pg2', [a.base, b.base], specs[key])].map((l) => withCpu(l, processes));
      for (const row of await runGroup(lanes, { pg1: a.proc.pid })) rows[row.subject].push(row);
    }
    const peakRssMb = memory.map((m) => m.stop().peakProcessMb);
    for (const i of instances) {
      await i.proc.stop();
      if (i.proc.code !== 0) note(`warning: instance ${i.id.toUpperCase()} exited with ${i.proc.code}: ${i.proc.stderr.slice(-500)}`);
    }
    // two instances' rate over one instance's, per path
    const ratio = Object.fromEntries(rows.pg1.map((one) => [one.key, Math.round((rows.pg2.find((r) => r.key === one.key).rps / one.rps) * 100) / 100]));
    return { server: version, database: name, 1: { rows: rows.pg1 }, 2: { rows: rows.pg2 }, ratio, peakRssMb };
  } finally {
    await Promise.all(instances.map((i) => i.proc.stop(5000)));
    await bench?.close().catch(() => undefined);
    // FORCE (PostgreSQL 13+): a connection left behind by a crashed instance must not keep it alive
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((e) => note(`warning: could not drop database ${name}: ${e.message}`));
    await admin.end().catch(() => undefined);
  }
}

/**
 * Wraps a lane so that its row also says where the processor time went during its measured slices:
 * each of `who` (a function listing the pids of a process tree), the driver and the whole machine
 * (the rest is someone else's), in % of one core.
 * On a machine with few cores this is what explains a scaling factor.
 */
function withCpu(l, who) {
  const used = Object.fromEntries([...Object.keys(who), 'driver', 'machine'].map((k) => [k, 0]));
  let wall = 0;
  const snapshot = () => ({ at: performance.now(), machine: machineBusySeconds(), driver: (process.cpuUsage().user + process.cpuUsage().system) / 1e6, ...Object.fromEntries(Object.entries(who).map(([k, pids]) => [k, cpuSeconds(pids())])) });
  const { slice, finish } = l;
  return {
    ...l,
    async slice(seconds) {
      const before = snapshot();
      const r = await slice(seconds);
      const after = snapshot();
      wall += (after.at - before.at) / 1000;
      for (const k of Object.keys(used)) used[k] += Math.max(0, after[k] - before[k]);
      return r;
    },
    async finish() {
      const cpu = Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Math.round((v / Math.max(wall, 0.001)) * 100)]));
      // `this`: the wrapper, which warm() marked with the first measured token
      return { ...(await finish.call(this)), cpuPercent: cpu };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// targets (issue 6) and the report

const TARGETS = {
  passwordVsArgon2: 0.9,
  vsKoa: 0.3,
  jwksVsKoa: 0.8,
  vsPeer: 2,
  p99Ms: 20,
  rssMb: 200,
  workerScaling: 1.6,
};

const rowOf = (section, key) => section?.rows.find((r) => r.key === key || r.pairedWith === key);

/** The limit a path is held against (measured in turns with it), and the target share. */
function limitOf(results, key) {
  if (key === 'password') {
    const a = rowOf(results.argon2, key);
    return a && { name: 'argon2', rps: a.rps, target: TARGETS.passwordVsArgon2 };
  }
  if (!VS_KOA.has(key)) return undefined;
  const k = rowOf(results.koa, key);
  return k && { name: 'koa', rps: k.rps, target: key === 'jwks' ? TARGETS.jwksVsKoa : TARGETS.vsKoa };
}

const peerOf = (results, key) => (VS_PEER.has(key) ? rowOf(results.peer, key) : undefined);

/** No error responses, every request with a fresh token, and the probes and checks passed. */
const clean = (row) => row.errors === 0 && !row.poolDry && !row.problem;
const errorText = (row) => `${row.errors}${row.poolDry ? ', the pool ran dry' : ''}${row.problem ? `, ${row.problem}` : ''}`;

function checks(results) {
  const out = [];
  const add = (what, value, target, pass, shown) => out.push({ what, value, target, pass, shown });
  for (const row of results.tollgate?.rows ?? []) {
    add(`${row.label}: errors`, row.errors, 0, clean(row), errorText(row));
    const limit = limitOf(results, row.key);
    if (limit) add(`${row.label}: share of ${limit.name}`, row.rps / limit.rps, limit.target, row.rps / limit.rps >= limit.target, pct(row.rps / limit.rps));
    const peer = peerOf(results, row.key);
    if (peer) add(`${row.label}: × node-oidc-provider`, row.rps / peer.rps, TARGETS.vsPeer, row.rps / peer.rps >= TARGETS.vsPeer, `${(row.rps / peer.rps).toFixed(2)}×`);
    if (row.key !== 'password') add(`${row.label}: p99 ms`, row.p99, TARGETS.p99Ms, row.p99 <= TARGETS.p99Ms, `${row.p99} ms`);
  }
  // a comparison only counts when the other side did the work too
  for (const row of [...(results.peer?.rows ?? []), ...(results.koa?.rows ?? [])]) add(`${row.subject} ${row.label} (with ${row.pairedWith}): errors`, row.errors, 0, clean(row), errorText(row));
  if (results.tollgate) add('peak RSS of the server, MB', results.tollgate.peakRssMb, TARGETS.rssMb, results.tollgate.peakRssMb <= TARGETS.rssMb, `${results.tollgate.peakRssMb.toFixed(0)} MB`);
  const w = results.workers;
  if (w?.[1] && w?.[2]) {
    for (const one of w[1].rows) {
      const two = rowOf(w[2], one.key);
      add(`--workers 2 / --workers 1, ${one.label}`, two.rps / one.rps, TARGETS.workerScaling, two.rps / one.rps >= TARGETS.workerScaling, `${(two.rps / one.rps).toFixed(2)}×`);
      add(`--workers 1, ${one.label}: errors`, one.errors, 0, clean(one), errorText(one));
      add(`--workers 2, ${two.label}: errors`, two.errors, 0, clean(two), errorText(two));
    }
  }
  // PostgreSQL: no throughput target (issue 9 asks for the figures); every request must succeed
  const p = results.postgres;
  for (const [n, section] of [[1, p?.[1]], [2, p?.[2]]]) {
    for (const row of section?.rows ?? []) add(`PostgreSQL, ${n} instance${n === 1 ? '' : 's'}, ${row.label}: errors`, row.errors, 0, clean(row), errorText(row));
  }
  return out;
}

const pct = (x) => `${Math.round(x * 100)}%`;
const mark = (pass) => (pass ? '✓' : '✗');

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const cell = (c, i) => (align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]));
  return [headers.map(cell).join('  '), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => r.map(cell).join('  ').trimEnd())].join('\n');
}

function report(results) {
  const o = results.options;
  const m = results.machine;
  const lines = [`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, ${m.os}; load average at start ${m.loadAverageAtStart.join(' ')}`];
  lines.push(`Each path: ${o.warmupSeconds} s warm-up, then ${o.seconds} s measured in 1 s turns with what it is compared with; autocannon in the driver process, over loopback.`);
  if (results.tollgate) {
    const rss = results.tollgate.peakRssMb;
    lines.push('', `Tollgate, one process (node dist/src/main.js), SQLite WAL. Peak RSS ${rss.toFixed(0)} MB (≤${TARGETS.rssMb} MB ${mark(rss <= TARGETS.rssMb)})`);
    lines.push(
      table(
        ['path', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS MB', 'limit /s', 'share (target)', 'peer /s', 'Tollgate/peer (target)'],
        results.tollgate.rows.map((row) => {
          const limit = limitOf(results, row.key);
          const peer = peerOf(results, row.key);
          const share = limit ? row.rps / limit.rps : undefined;
          const ratio = peer ? row.rps / peer.rps : undefined;
          return [
            row.label,
            row.connections,
            Math.round(row.rps),
            row.p50,
            row.key === 'password' ? `${row.p99}` : `${row.p99} ${mark(row.p99 <= TARGETS.p99Ms)}`,
            `${row.errors}${row.poolDry ? ' (pool ran dry)' : ''}${row.problem ? ' (check failed)' : ''} ${mark(clean(row))}`,
            row.rssMb === undefined ? '' : Math.round(row.rssMb),
            limit ? `${limit.name} ${limit.name === 'argon2' ? limit.rps.toFixed(1) : Math.round(limit.rps)}` : '',
            share === undefined ? '' : `${pct(share)} (≥${pct(limit.target)}) ${mark(share >= limit.target)}`,
            peer ? Math.round(peer.rps) : '',
            ratio === undefined ? '' : `${ratio.toFixed(2)}× (≥${TARGETS.vsPeer}×) ${mark(ratio >= TARGETS.vsPeer)}`,
          ];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'l'],
      ),
    );
  }
  const others = [...(results.koa?.rows ?? []), ...(results.argon2?.rows ?? []), ...(results.peer?.rows ?? [])];
  if (others.length > 0) {
    lines.push('', 'What Tollgate was compared with, measured in turns with each path');
    lines.push(
      table(
        ['server', 'request', 'in turns with', 'conns', 'per second', 'p50 ms', 'p99 ms', 'errors'],
        others.map((r) => [
          r.subject === 'koa' ? 'bare Koa' : r.subject === 'peer' ? 'node-oidc-provider' : 'raw argon2',
          r.subject === 'argon2' ? `verify (m=${results.argon2.memoryCostKiB} KiB, t=${results.argon2.timeCost}, p=${results.argon2.parallelism})` : r.label,
          r.pairedWith,
          r.connections,
          r.subject === 'argon2' ? r.rps.toFixed(1) : Math.round(r.rps),
          r.subject === 'argon2' ? '' : r.p50,
          r.subject === 'argon2' ? '' : r.p99,
          r.subject === 'argon2' ? '' : `${r.errors}${r.poolDry ? ' (pool ran dry)' : ''}${r.problem ? ' (check failed)' : ''}`,
        ]),
        ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const rss = [results.koa && `bare Koa ${results.koa.peakRssMb.toFixed(0)} MB`, results.peer && `node-oidc-provider ${results.peer.peakRssMb.toFixed(0)} MB`].filter(Boolean);
    if (rss.length > 0) lines.push(`Peak RSS: ${rss.join(', ')}`);
  }
  if (results.es256) lines.push('', `ES256 JWT signing with jose, alone, ${results.es256.concurrency} in flight: ${Math.round(results.es256.perSecond)} signatures/s (for reference)`);
  if (results.workers?.[1] && results.workers?.[2]) {
    const w = results.workers;
    lines.push('', `tollgate serve --workers N (node:cluster, one SQLite file), both up, in turns. Peak RSS of all processes: ${w[1].peakRssMb.toFixed(0)} MB / ${w[2].peakRssMb.toFixed(0)} MB`);
    lines.push(
      table(
        ['path', 'workers=1 req/s', 'p99', 'errors', 'workers=2 req/s', 'p99', 'errors', 'scaling (target)'],
        w[1].rows.map((one) => {
          const two = rowOf(w[2], one.key);
          const f = two.rps / one.rps;
          return [one.label, Math.round(one.rps), one.p99, one.errors, Math.round(two.rps), two.p99, two.errors, `${f.toFixed(2)}× (≥${TARGETS.workerScaling}×) ${mark(f >= TARGETS.workerScaling)}`];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      ),
    );
    if (w[1].rows[0]?.cpuPercent) {
      const cpu = (c) => `Tollgate ${c.server}%, driver ${c.driver}%, machine ${c.machine}%`;
      lines.push(`Processor time during the measured turns, in % of one core (${results.machine.cores} cores in all):`);
      for (const one of w[1].rows) lines.push(`  ${one.label}: --workers 1: ${cpu(one.cpuPercent)}; --workers 2: ${cpu(rowOf(w[2], one.key).cpuPercent)}`);
    }
  }
  if (results.postgres?.skipped) lines.push('', `PostgreSQL: skipped: ${results.postgres.skipped}`);
  else if (results.postgres?.[1]) {
    const p = results.postgres;
    lines.push(
      '',
      `Tollgate on PostgreSQL ${p.server} (same machine, one database): instance A alone, then A and B with the connections split between them (two autocannon runs at once), in turns. Peak RSS: A ${p.peakRssMb[0].toFixed(0)} MB, B ${p.peakRssMb[1].toFixed(0)} MB`,
    );
    lines.push(
      table(
        ['path', 'conns', '1 instance req/s', 'p50', 'p99', 'errors', '2 instances req/s', 'p50', 'p99', 'errors', '2/1'],
        p[1].rows.map((one) => {
          const two = rowOf(p[2], one.key);
          const errs = (row) => `${row.errors}${row.poolDry ? ' (pool ran dry)' : ''}${row.problem ? ' (check failed)' : ''} ${mark(clean(row))}`;
          return [one.label, one.connections, Math.round(one.rps), one.p50, one.p99, errs(one), Math.round(two.rps), two.p50, two.p99, errs(two), `${(two.rps / one.rps).toFixed(2)}×`];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const cpu = (c) => `A ${c.a}%, B ${c.b}%, PostgreSQL ${c.postgres ?? '?'}%, driver ${c.driver}%, machine ${c.machine}%`;
    lines.push(`Processor time during the measured turns, in % of one core (${results.machine.cores} cores in all):`);
    for (const one of p[1].rows) lines.push(`  ${one.label}: 1 instance: ${cpu(one.cpuPercent)}; 2 instances: ${cpu(rowOf(p[2], one.key).cpuPercent)}`);
    if (!p[1].rows[0]?.cpuPercent?.postgres) lines.push('  (PostgreSQL is not on this machine, or its processes could not be read: its share is not shown)');
  }
  const failed = results.checks.filter((c) => !c.pass);
  lines.push('', `Targets: ${results.checks.length - failed.length} of ${results.checks.length} met.`);
  for (const c of failed) {
    const atMost = /p99|RSS|errors/.test(c.what);
    const target = c.what.includes('share of') ? pct(c.target) : c.what.includes('×') || c.what.includes('/ --workers') ? `${c.target}×` : c.what.includes('p99') ? `${c.target} ms` : c.what.includes('RSS') ? `${c.target} MB` : c.target;
    lines.push(`  ✗ ${c.what}: ${c.shown} (target ${atMost ? '≤' : '≥'} ${target})`);
  }
  return lines.join('\n');
}

main().catch(async (e) => {
  note(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  await stopAll();
  process.exit(1);
});
