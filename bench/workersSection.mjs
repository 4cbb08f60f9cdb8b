// tollgate serve --workers 1 and --workers 2 (node:cluster, one SQLite file), both up, in turns.
import path from 'node:path';
import { withCpu } from './cpu.mjs';
import { lane } from './lane.mjs';
import { note, ROOT } from './options.mjs';
import { processTree, watchMemory } from './procfs.mjs';
import { sleep } from './processes.mjs';
import { startTollgate } from './servers.mjs';
import { runGroup } from './turns.mjs';

/** The refresh grant and access-token introspection on each; the results' `workers` section. */
export async function workersSection({ env, tmp, requests }) {
  const one = await startTollgate(env, tmp, [path.join(ROOT, 'bin', 'tollgate'), 'serve', '--workers', '1'], [], 'tollgate-workers-1.log');
  const two = await startTollgate(env, tmp, [path.join(ROOT, 'bin', 'tollgate'), 'serve', '--workers', '2'], [], 'tollgate-workers-2.log');
  // every worker listening, not just the first
  for (let i = 0; i < 100 && processTree(two.proc.pid).length < 3; i++) await sleep(100);
  await sleep(1000);
  note('Tollgate: bin/tollgate serve --workers 1 / --workers 2');
  const memory = { workers1: watchMemory(one.proc.pid), workers2: watchMemory(two.proc.pid) };
  const pids = { workers1: one.proc.pid, workers2: two.proc.pid };
  const read = await requests.readTokens();
  const specs1 = requests.specs(read, one.base);
  const specs2 = requests.specs(read, two.base);
  const rows = { workers1: [], workers2: [] };
  for (const key of ['refresh', 'introspect_access']) {
    note(`  ${specs1[key].label}: --workers 1 / --workers 2 in turns`);
    // processor time per turn: on a 2-core machine shared with the load generator it is what explains the factor
    const lanes = [withCpu(await lane('workers1', one.base, specs1[key]), { server: () => processTree(one.proc.pid) }), withCpu(await lane('workers2', two.base, specs2[key]), { server: () => processTree(two.proc.pid) })];
    for (const row of await runGroup(lanes, pids)) rows[row.subject].push(row);
  }
  const workers = {};
  for (const [n, name, server] of [[1, 'workers1', one], [2, 'workers2', two]]) {
    const rss = memory[name].stop();
    await server.proc.stop();
    workers[n] = { rows: rows[name], peakRssMb: rss.peakTotalMb, processes: rss.processes };
  }
  return workers;
}
