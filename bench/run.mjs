#!/usr/bin/env node
// npm run bench [-- --quick] [-- --json FILE] ... : Tollgate's hot paths under autocannon, next to
// the limits of this machine and to node-oidc-provider. Each path takes turns, one second at a
// time, with what it is compared with, so every figure is read as a ratio that holds on a noisy
// machine. See bench/README.md for what each column means.
//
// This file is the run: setup (build, temporary store, seed), the sections in order, the report.
// options.mjs reads the command line; pathsSection.mjs, verifierSection.mjs, dpopSection.mjs,
// workersSection.mjs and postgresSection.mjs measure; targets.mjs and report.mjs judge and print.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBuilt } from './build.mjs';
import { dpopSection } from './dpopSection.mjs';
import { limit } from './limitLanes.mjs';
import { note, opts, wanted } from './options.mjs';
import { RUN_ORDER, pathsSection } from './pathsSection.mjs';
import { postgresSection } from './postgresSection.mjs';
import { stopAll } from './processes.mjs';
import { formatSummary, summarize } from './profile.mjs';
import { report } from './report.mjs';
import { tollgateEnv } from './servers.mjs';
import { tollgateRequests } from './specs.mjs';
import { checks } from './targets.mjs';
import { verifierSection } from './verifierSection.mjs';
import { workersSection } from './workersSection.mjs';

process.once('SIGINT', () => {
  void stopAll().then(() => process.exit(130));
});

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
  const run = { env, tmp, bench, seed, who, requests: tollgateRequests(seed, bench, who) };

  try {
    const keys = RUN_ORDER.filter(wanted);
    if (keys.length > 0) Object.assign(results, await pathsSection(run, keys));

    if (wanted('limits')) {
      note(`limit: ES256 JWT signing with jose, ${opts.connections} in flight, alone ...`);
      results.es256 = { ...limit(['es256', opts.seconds, opts.connections]), concurrency: opts.connections };
      note(`    ${Math.round(results.es256.perSecond)} signatures/s`);
    }

    if (wanted('verifier')) results.verifier = await verifierSection(run);

    if (wanted('dpop')) results.dpop = await dpopSection(run);

    if (wanted('workers')) results.workers = await workersSection(run);

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

main().catch(async (e) => {
  note(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  await stopAll();
  process.exit(1);
});
