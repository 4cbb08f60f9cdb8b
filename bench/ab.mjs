#!/usr/bin/env node
// Paired A/B of two builds of Tollgate on the same paths, measured in turns with bare Koa:
//   AB_BASE=/path/to/other/checkout node bench/ab.mjs --only jwks,introspect_access --duration 5
// The other checkout must be built (dist/, config/, migrations/, node_modules). Both servers share
// one seeded SQLite store (WAL) and take 1 s turns with the bare Koa limit, so a burst of load from
// elsewhere on the machine falls on both alike; each line gives both builds' server CPU per request,
// their ratio to Koa's and new/base. How each change of issue 19 was judged before it was kept.
// AB_B_LOG=warn runs the new build with another log level (what the request log costs).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBuilt } from './build.mjs';
import { lane } from './lane.mjs';
import { note, opts, ROOT } from './options.mjs';
import { stopAll } from './processes.mjs';
import { startKoa, startTollgate, tollgateEnv } from './servers.mjs';
import { koaFor, tollgateRequests } from './specs.mjs';
import { runGroup } from './turns.mjs';

const base = process.env.AB_BASE;
if (!base || !fs.existsSync(path.join(base, 'dist', 'src', 'main.js'))) {
  note('usage: AB_BASE=/path/to/a/built/checkout node bench/ab.mjs --only PATH[,PATH] [--duration S]');
  process.exit(2);
}
if (!opts.only) {
  note('name the paths with --only');
  process.exit(2);
}
ensureBuilt();
const seed = await import('./seed.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-ab-'));
const env = tollgateEnv({ TOLLGATE_DATABASE: path.join(tmp, 'tollgate.db'), TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url'), TOLLGATE_HOST: '127.0.0.1' });
const bench = await seed.openBench(env);
const who = await seed.seedPrincipals(bench);
await seed.seedDenyList(bench, 100);
const requests = tollgateRequests(seed, bench, who);
const out = [];
try {
  const a = await startTollgate(env, tmp, [path.join(base, 'dist', 'src', 'main.js')], [], 'base.log');
  const bEnv = process.env.AB_B_LOG ? { ...env, TOLLGATE_LOG_LEVEL: process.env.AB_B_LOG } : env;
  const b = await startTollgate(bEnv, tmp, [path.join(ROOT, 'dist', 'src', 'main.js')], [], 'new.log');
  const koa = await startKoa();
  const pids = { base: a.proc.pid, new: b.proc.pid, koa: koa.proc.pid };
  const read = await requests.readTokens();
  const specsA = requests.specs(read, a.base);
  const specsB = requests.specs(read, b.base);
  for (const key of opts.only) {
    if (!specsA[key]) throw new Error(`no path ${key}`);
    const lanes = [await lane('base', a.base, specsA[key]), await lane('new', b.base, specsB[key]), await lane('koa', koa.base, koaFor(key, requests.serviceAuth))];
    const [ra, rb, rk] = await runGroup(lanes, pids);
    const vsKoa = (r) => (r.serverCpuUsPerRequest / rk.serverCpuUsPerRequest).toFixed(2);
    out.push(`${key}: base ${ra.serverCpuUsPerRequest} µs (${vsKoa(ra)}× Koa, p99 ${ra.p99} ms), new ${rb.serverCpuUsPerRequest} µs (${vsKoa(rb)}× Koa, p99 ${rb.p99} ms), Koa ${rk.serverCpuUsPerRequest} µs; new/base ${(rb.serverCpuUsPerRequest / ra.serverCpuUsPerRequest).toFixed(3)}; errors ${ra.errors}/${rb.errors}`);
  }
} finally {
  await stopAll();
  await bench.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(`${out.join('\n')}\n`);
process.exit(0);
