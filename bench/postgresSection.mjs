// PostgreSQL (issue 9): a fleet on one database. One instance, and two instances on the same
// database, in turns.
import crypto from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { withCpu } from './cpu.mjs';
import { lane } from './lane.mjs';
import { note, opts, ROOT } from './options.mjs';
import { commandOf, parentOf, processTree, watchMemory } from './procfs.mjs';
import { freePort, startProcess, track, waitReady } from './processes.mjs';
import { serverEnv, tollgateEnv } from './servers.mjs';
import { tollgateRequests } from './specs.mjs';
import { runGroup } from './turns.mjs';

const PG_PATHS = ['refresh', 'introspect_access'];

/**
 * Creates a database of our own on `serverUrl`, seeds it as the SQLite store is seeded, starts two
 * Tollgate instances on it (node dist/src/main.js, as `npm start` does) and measures the refresh
 * grant and access-token introspection against instance A alone, then against A and B together
 * with the same connections split between them, in turns. The database is dropped at the end.
 */
export async function postgresSection(serverUrl, tmp, seed) {
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
    const requests = tollgateRequests(seed, bench, who);
    // no base: neither of PG_PATHS checks a revocation afterwards
    const specs = requests.specs({ access: await requests.mintAccess() }, undefined);

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
