#!/usr/bin/env node
// npm run bench [-- --quick] [-- --json FILE] ... : Tollgate's hot paths under autocannon, next to
// the limits of this machine and to node-oidc-provider, all measured in the same run so every
// figure is read as a ratio. See bench/README.md for what each column means.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, cannon, cycle, firstJsonLine, freePort, memoryNow, processTree, sleep, startProcess, waitReady, watchMemory } from './lib.mjs';
import { formatSummary, summarize } from './profile.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = path.join(ROOT, 'bench');

// ---------------------------------------------------------------------------------------------
// options

const USAGE = `usage: npm run bench -- [options]
  --quick              a smoke run: 2 s per path (default 5 s)
  --duration S         seconds per path (after a 1 s warm-up)
  --connections N      concurrent connections (default 50; the password grant uses fewer, see README)
  --json [FILE]        also write the results as JSON (default FILE: bench-results.json)
  --only a,b           run only these paths or sections (${'password refresh client_credentials introspect_access introspect_refresh revoke_access revoke_refresh jwks deny_list limits peer workers'})
  --skip a,b           leave these out
  --cpu-prof [DIR]     profile the single Tollgate server (node --cpu-prof) and print where its time went
  --log-level LEVEL    the server's log level (default: the configured one)
  --keep               keep the temporary directory (database, server logs)`;

function parseArgs(argv) {
  const o = { seconds: 5, warmup: 1, connections: 50, json: undefined, only: undefined, skip: new Set(), cpuProf: undefined, logLevel: undefined, keep: false, quick: false };
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

/** Warm-up, then the measured run. Pool paths mint what the warm-up rate says the run will use. */
async function measure(base, spec) {
  const connections = spec.connections ?? opts.connections;
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
  const request = { url: base + spec.path, method: spec.method ?? 'POST', headers: spec.headers ?? {}, body: spec.fixedBody, nextBody, connections };
  const probed = await probe(request, nextBody ? nextBody() : spec.fixedBody, spec.expect);
  if (probed) note(`    probe failed: ${probed}`);
  const warm = await cannon({ ...request, seconds: opts.warmup });
  if (pool) {
    // twice what the warm-up rate asks for: the warm-up runs colder than the measurement
    const want = Math.ceil(Math.max(warm.rps, 200) * 2 * (opts.seconds + 1.5)) + connections * 2;
    if (pool.remaining < want) pool.add(await spec.mint(want - pool.remaining));
    pool.dry = false;
  }
  const firstMeasured = pool?.items[pool.next];
  const r = await cannon({ ...request, seconds: opts.seconds });
  const confirmed = spec.confirm && firstMeasured !== undefined ? await spec.confirm(firstMeasured) : undefined;
  if (confirmed) note(`    check after the run failed: ${confirmed}`);
  const problem = probed ? `probe: ${probed}` : confirmed;
  return { key: spec.key, label: spec.label, connections, ...r, poolDry: pool ? pool.dry : undefined, warmupErrors: warm.errors, ...(problem ? { problem } : {}) };
}

async function runPaths(title, base, specs, pid) {
  const rows = [];
  for (const spec of specs) {
    note(`  ${title}: ${spec.label} ...`);
    const row = await measure(base, spec);
    // which path grows the server: its resident set right after, and the high-water mark so far
    Object.assign(row, memoryNow(pid));
    note(`    ${Math.round(row.rps)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, errors ${row.errors}${row.errors ? ` ${JSON.stringify(row.codes)}` : ''}, RSS ${row.rssMb.toFixed(0)} MB`);
    rows.push(row);
  }
  return rows;
}

/** The environment of a Tollgate process: ours, without any TOLLGATE_* of the caller's. */
function tollgateEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  return { ...env, ...extra };
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
  const mintRefresh = (count) => seed.mintRefreshTokens(bench, { userId: who.user.id, clientId: who.app.id, count });
  const readTokens = async () => ({
    access: await seed.mintAccessTokens(bench, { sub: who.user.id, clientId: who.app.id, sid: crypto.randomUUID(), count: 100 }),
    refresh: await mintRefresh(100),
  });
  const introspectBody = (hint) => (token) => form({ token, token_type_hint: hint });

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
    client_credentials: { key: 'client_credentials', label: 'client_credentials', path: '/token', headers: serviceAuth, fixedBody: form({ grant_type: 'client_credentials', scope: 'api:read' }), expect: tokenResponse },
    introspect_access: { key: 'introspect_access', label: 'introspect access token', path: '/introspect', headers: serviceAuth, cycle: read.access, body: introspectBody('access_token'), expect: active },
    introspect_refresh: { key: 'introspect_refresh', label: 'introspect refresh token', path: '/introspect', headers: serviceAuth, cycle: read.refresh, body: introspectBody('refresh_token'), expect: active },
    revoke_access: {
      key: 'revoke_access',
      label: 'revoke access token',
      path: '/revoke',
      headers: serviceAuth,
      mint: (count) => seed.mintAccessTokens(bench, { sub: who.service.id, clientId: who.service.id, count }),
      body: introspectBody('access_token'),
      confirm: inactiveAt(`${base}/introspect`, serviceAuth),
    },
    revoke_refresh: { key: 'revoke_refresh', label: 'revoke refresh token', path: '/revoke', headers: appAuth, mint: mintRefresh, body: introspectBody('refresh_token'), confirm: inactiveAt(`${base}/introspect`, serviceAuth) },
    jwks: { key: 'jwks', label: 'JWKS', method: 'GET', path: '/.well-known/jwks.json', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
    deny_list: { key: 'deny_list', label: 'deny-list feed (100 entries)', method: 'GET', path: '/deny-list', headers: serviceAuth, expect: expectJson('100 entries', (j) => j.entries?.length === 100) },
  });
  // reads first, so the deny list and the store are as seeded; the writes after
  const RUN_ORDER = ['jwks', 'deny_list', 'introspect_access', 'introspect_refresh', 'client_credentials', 'refresh', 'password', 'revoke_access', 'revoke_refresh'];
  const TABLE_ORDER = ['password', 'refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'revoke_access', 'revoke_refresh', 'jwks', 'deny_list'];

  /** The limits, each alone in its own process. Run before Tollgate and again at the end. */
  const measureLimits = async (when) => {
    const out = {};
    note(`limit (${when}): a bare Koa POST endpoint ...`);
    const koa = track(startProcess(process.execPath, [path.join(BENCH, 'bareKoa.mjs')], { cwd: ROOT }));
    const { port } = await firstJsonLine(koa);
    const memory = watchMemory(koa.pid);
    const [row] = await runPaths('bare Koa', `http://127.0.0.1:${port}`, [{ key: 'koa', label: 'bare Koa POST (form in, JSON out)', path: '/token', headers: serviceAuth, fixedBody: form({ grant_type: 'client_credentials', scope: 'api:read' }) }], koa.pid);
    out.koa = { ...row, peakRssMb: memory.stop().peakProcessMb };
    await koa.stop();
    const limit = (args) => {
      const r = spawnSync(process.execPath, [path.join(BENCH, 'limits.mjs'), ...args.map(String)], { cwd: ROOT, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`limits.mjs ${args[0]} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    };
    note(`limit (${when}): argon2id verify, ${passwords.maxConcurrentHashes} at a time (m=${passwords.memoryCostKiB} KiB, t=${passwords.timeCost}, p=${passwords.parallelism}) ...`);
    out.argon2 = limit(['argon2', opts.seconds, passwords.maxConcurrentHashes, passwords.memoryCostKiB, passwords.timeCost, passwords.parallelism]);
    note(`    ${out.argon2.perSecond.toFixed(1)} verifies/s`);
    note(`limit (${when}): ES256 JWT signing with jose, ${opts.connections} in flight ...`);
    out.es256 = limit(['es256', opts.seconds, opts.connections]);
    note(`    ${Math.round(out.es256.perSecond)} signatures/s`);
    return out;
  };
  let limitsBefore;

  try {
    if (wanted('limits')) limitsBefore = await measureLimits('before');

    // --- Tollgate, one process (npm start's node dist/src/main.js) ---
    const keys = RUN_ORDER.filter(wanted);
    if (keys.length > 0) {
      const port = await freePort();
      const specs = tollgateSpecs(await readTokens(), `http://127.0.0.1:${port}`);
      const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [];
      note(`Tollgate: node ${[...nodeArgs, 'dist/src/main.js'].join(' ')} on 127.0.0.1:${port}`);
      const server = track(startProcess(process.execPath, [...nodeArgs, path.join(ROOT, 'dist', 'src', 'main.js')], { env: { ...env, TOLLGATE_PORT: String(port) }, cwd: ROOT, stdoutFile: path.join(tmp, 'tollgate.log') }));
      await waitReady(server, `http://127.0.0.1:${port}/readyz`);
      const memory = watchMemory(server.pid);
      const rows = await runPaths('Tollgate', `http://127.0.0.1:${port}`, keys.map((k) => specs[k]), server.pid);
      const rss = memory.stop();
      await server.stop();
      if (server.code !== 0) note(`warning: the server exited with ${server.code}: ${server.stderr.slice(-500)}`);
      results.tollgate = { rows: TABLE_ORDER.map((k) => rows.find((r) => r.key === k)).filter(Boolean), peakRssMb: rss.peakProcessMb };
      if (opts.cpuProf) {
        const profiles = fs.readdirSync(opts.cpuProf).filter((f) => f.endsWith('.cpuprofile'));
        results.profiles = profiles.map((f) => path.join(opts.cpuProf, f));
      }
    }

    // --- the peer: node-oidc-provider ---
    if (wanted('peer')) {
      note('peer: node-oidc-provider ...');
      const peer = track(startProcess(process.execPath, [path.join(BENCH, 'peer.mjs')], { cwd: ROOT }));
      const info = await firstJsonLine(peer);
      const base = `http://127.0.0.1:${info.port}`;
      const peerAuth = { authorization: basic(info.clientId, info.clientSecret) };
      // opaque client_credentials tokens: the only access tokens v9 introspects or revokes
      const peerMint = async (count) => {
        const out = [];
        let left = count;
        const lane = async () => {
          while (left > 0) {
            left--;
            const r = await fetch(`${base}/token`, { method: 'POST', headers: { ...peerAuth, 'content-type': 'application/x-www-form-urlencoded' }, body: form({ grant_type: 'client_credentials', scope: 'api:read' }) });
            if (r.status !== 200) throw new Error(`peer token request: ${r.status} ${await r.text()}`);
            out.push((await r.json()).access_token);
          }
        };
        await Promise.all(Array.from({ length: 16 }, lane));
        return out;
      };
      const memory = watchMemory(peer.pid);
      const rows = await runPaths('peer', base, [
        { key: 'jwks', label: 'JWKS', method: 'GET', path: '/jwks', expect: expectJson('a JWK Set', (j) => j.keys?.length >= 1) },
        { key: 'introspect_access', label: 'introspect access token (opaque)', path: '/token/introspection', headers: peerAuth, cycle: await peerMint(100), body: introspectBody('access_token'), expect: active },
        { key: 'client_credentials', label: 'client_credentials (JWT)', path: '/token', headers: peerAuth, fixedBody: form({ grant_type: 'client_credentials', scope: 'api:read', resource: info.resource }), expect: tokenResponse },
        { key: 'revoke_access', label: 'revoke access token (opaque)', path: '/token/revocation', headers: peerAuth, mint: peerMint, body: introspectBody('access_token'), confirm: inactiveAt(`${base}/token/introspection`, peerAuth) },
      ], peer.pid);
      results.peer = { rows, peakRssMb: memory.stop().peakProcessMb };
      await peer.stop();
    }

    // --- tollgate serve --workers 1 vs 2 ---
    if (wanted('workers')) {
      results.workers = {};
      for (const n of [1, 2]) {
        const port = await freePort();
        const specs = tollgateSpecs(await readTokens(), `http://127.0.0.1:${port}`);
        note(`Tollgate: bin/tollgate serve --workers ${n} on 127.0.0.1:${port}`);
        const server = track(startProcess(process.execPath, [path.join(ROOT, 'bin', 'tollgate'), 'serve', '--workers', String(n)], { env: { ...env, TOLLGATE_PORT: String(port) }, cwd: ROOT, stdoutFile: path.join(tmp, `tollgate-workers-${n}.log`) }));
        await waitReady(server, `http://127.0.0.1:${port}/readyz`);
        // every worker listening, not just the first
        for (let i = 0; i < 100 && n > 1 && processTree(server.pid).length < n + 1; i++) await sleep(100);
        await sleep(n > 1 ? 1000 : 0);
        const memory = watchMemory(server.pid);
        const rows = await runPaths(`--workers ${n}`, `http://127.0.0.1:${port}`, [specs.refresh, specs.introspect_access], server.pid);
        const rss = memory.stop();
        await server.stop();
        results.workers[n] = { rows, peakRssMb: rss.peakTotalMb, processes: rss.processes };
      }
    }

    // --- the limits again: a ratio is only as good as the noise at both ends of the run ---
    if (limitsBefore) {
      const after = await measureLimits('after');
      const mean = (a, b) => (a + b) / 2;
      results.limits = {
        koa: { rps: mean(limitsBefore.koa.rps, after.koa.rps), runs: [limitsBefore.koa, after.koa], connections: after.koa.connections },
        argon2: {
          perSecond: mean(limitsBefore.argon2.perSecond, after.argon2.perSecond),
          runs: [limitsBefore.argon2, after.argon2],
          concurrency: passwords.maxConcurrentHashes,
          memoryCostKiB: passwords.memoryCostKiB,
          timeCost: passwords.timeCost,
          parallelism: passwords.parallelism,
        },
        es256: { perSecond: mean(limitsBefore.es256.perSecond, after.es256.perSecond), runs: [limitsBefore.es256, after.es256], concurrency: opts.connections },
      };
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

function rowOf(section, key) {
  return section?.rows.find((r) => r.key === key);
}

/** The limit each path is held against, and the target ratio. */
function limitOf(results, key) {
  const l = results.limits;
  if (!l) return undefined;
  if (key === 'password') return { name: 'argon2', rps: l.argon2.perSecond, target: TARGETS.passwordVsArgon2 };
  if (['refresh', 'client_credentials', 'introspect_access', 'introspect_refresh'].includes(key)) return { name: 'koa', rps: l.koa.rps, target: TARGETS.vsKoa };
  if (key === 'jwks') return { name: 'koa', rps: l.koa.rps, target: TARGETS.jwksVsKoa };
  return undefined;
}

/** No error responses, every request with a fresh token, and the probes and checks passed. */
const clean = (row) => row.errors === 0 && !row.poolDry && !row.problem;

function checks(results) {
  const out = [];
  const add = (what, value, target, pass, shown) => out.push({ what, value, target, pass, shown });
  for (const row of results.tollgate?.rows ?? []) {
    add(`${row.label}: errors`, row.errors, 0, clean(row), `${row.errors}${row.poolDry ? ', the pool ran dry' : ''}${row.problem ? `, ${row.problem}` : ''}`);
    const limit = limitOf(results, row.key);
    if (limit) add(`${row.label}: share of ${limit.name}`, row.rps / limit.rps, limit.target, row.rps / limit.rps >= limit.target, pct(row.rps / limit.rps));
    const peer = rowOf(results.peer, row.key);
    if (peer) add(`${row.label}: × node-oidc-provider`, row.rps / peer.rps, TARGETS.vsPeer, row.rps / peer.rps >= TARGETS.vsPeer, `${(row.rps / peer.rps).toFixed(2)}×`);
    if (row.key !== 'password') add(`${row.label}: p99 ms`, row.p99, TARGETS.p99Ms, row.p99 <= TARGETS.p99Ms, `${row.p99} ms`);
  }
  // a peer figure only counts when the peer did the work too
  for (const row of results.peer?.rows ?? []) add(`node-oidc-provider ${row.label}: errors`, row.errors, 0, clean(row), `${row.errors}${row.poolDry ? ', the pool ran dry' : ''}${row.problem ? `, ${row.problem}` : ''}`);
  if (results.tollgate) add('peak RSS of the server, MB', results.tollgate.peakRssMb, TARGETS.rssMb, results.tollgate.peakRssMb <= TARGETS.rssMb, `${results.tollgate.peakRssMb.toFixed(0)} MB`);
  const w = results.workers;
  if (w?.[1] && w?.[2]) {
    for (const key of ['refresh', 'introspect_access']) {
      const one = rowOf(w[1], key);
      const two = rowOf(w[2], key);
      add(`--workers 2 / --workers 1, ${one.label}`, two.rps / one.rps, TARGETS.workerScaling, two.rps / one.rps >= TARGETS.workerScaling, `${(two.rps / one.rps).toFixed(2)}×`);
      add(`--workers 1, ${one.label}: errors`, one.errors, 0, clean(one), `${one.errors}${one.problem ? `, ${one.problem}` : ''}`);
      add(`--workers 2, ${two.label}: errors`, two.errors, 0, clean(two), `${two.errors}${two.problem ? `, ${two.problem}` : ''}`);
    }
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

function pathRows(results, section, withTargets) {
  return section.rows.map((row) => {
    const limit = withTargets ? limitOf(results, row.key) : undefined;
    const peer = withTargets ? rowOf(results.peer, row.key) : undefined;
    const p99 = withTargets && row.key !== 'password' ? `${row.p99} ${mark(row.p99 <= TARGETS.p99Ms)}` : `${row.p99}`;
    const errors = `${row.errors}${row.poolDry ? ' (pool ran dry)' : ''}${row.problem ? ' (check failed)' : ''}${withTargets ? ` ${mark(clean(row))}` : ''}`;
    const vsLimit = limit ? `${pct(row.rps / limit.rps)} of ${limit.name} (≥${pct(limit.target)}) ${mark(row.rps / limit.rps >= limit.target)}` : '';
    const vsPeer = peer ? `${(row.rps / peer.rps).toFixed(2)}× (≥${TARGETS.vsPeer}×) ${mark(row.rps / peer.rps >= TARGETS.vsPeer)}` : '';
    return [row.label, row.connections, Math.round(row.rps), row.p50, p99, errors, Math.round(row.rssMb), vsLimit, vsPeer];
  });
}

function report(results) {
  const o = results.options;
  const m = results.machine;
  const lines = [`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, ${m.os}; load average at start ${m.loadAverageAtStart.join(' ')}`];
  lines.push(`Each path: ${o.warmupSeconds} s warm-up, then ${o.seconds} s measured; autocannon in a separate process over loopback.`);
  const headers = ['path', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS MB', 'vs limit (target)', 'vs peer (target)'];
  const align = ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'];
  if (results.tollgate) {
    const rss = results.tollgate.peakRssMb;
    lines.push('', `Tollgate, one process (node dist/src/main.js), SQLite WAL. Peak RSS ${rss.toFixed(0)} MB (≤${TARGETS.rssMb} MB ${mark(rss <= TARGETS.rssMb)})`);
    lines.push(table(headers, pathRows(results, results.tollgate, true), align));
  }
  if (results.limits) {
    const l = results.limits;
    lines.push('', 'Limits of this machine, same run: measured before Tollgate and again at the end; ratios use the mean');
    lines.push(
      table(
        ['limit', 'concurrency', 'before /s', 'after /s', 'mean /s'],
        [
          ['bare Koa POST (form in, JSON out)', l.koa.connections, Math.round(l.koa.runs[0].rps), Math.round(l.koa.runs[1].rps), Math.round(l.koa.rps)],
          [`argon2id verify (m=${l.argon2.memoryCostKiB} KiB, t=${l.argon2.timeCost}, p=${l.argon2.parallelism})`, l.argon2.concurrency, l.argon2.runs[0].perSecond.toFixed(1), l.argon2.runs[1].perSecond.toFixed(1), l.argon2.perSecond.toFixed(1)],
          ['ES256 JWT sign (jose)', l.es256.concurrency, Math.round(l.es256.runs[0].perSecond), Math.round(l.es256.runs[1].perSecond), Math.round(l.es256.perSecond)],
        ],
        ['l', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  if (results.peer) {
    lines.push('', `node-oidc-provider (in-memory adapter), same requests. Peak RSS ${results.peer.peakRssMb.toFixed(0)} MB`);
    lines.push(table(headers.slice(0, 7), pathRows(results, results.peer, false).map((r) => r.slice(0, 7)), align));
  }
  if (results.workers?.[1] && results.workers?.[2]) {
    const w = results.workers;
    lines.push('', `tollgate serve --workers N (node:cluster, one SQLite file). Peak RSS of all processes: ${w[1].peakRssMb.toFixed(0)} MB / ${w[2].peakRssMb.toFixed(0)} MB`);
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
  }
  const failed = results.checks.filter((c) => !c.pass);
  lines.push('', `Targets: ${results.checks.length - failed.length} of ${results.checks.length} met.`);
  for (const c of failed) lines.push(`  ✗ ${c.what}: ${c.shown} (target ${c.what.includes('p99') || c.what.includes('RSS') || c.what.includes('errors') ? '≤' : '≥'} ${typeof c.target === 'number' && c.target < 1 && !c.what.includes('errors') ? pct(c.target) : c.target})`);
  return lines.join('\n');
}

main().catch(async (e) => {
  note(`bench: ${e instanceof Error ? e.message : String(e)}`);
  await stopAll();
  process.exit(1);
});
