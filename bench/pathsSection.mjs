// The paths: the single Tollgate server, each path in turns with what it is held against (bare
// Koa, raw argon2, node-oidc-provider), all of them up for the whole phase.
import fs from 'node:fs';
import path from 'node:path';
import { lane } from './lane.mjs';
import { argon2Lane } from './limitLanes.mjs';
import { note, opts, ROOT, wanted } from './options.mjs';
import { watchMemory } from './procfs.mjs';
import { startFloor, startKoa, startPeer, startTollgate } from './servers.mjs';
import { floorSpecs, koaFor, peerSpecs } from './specs.mjs';
import { VS_KOA, VS_PEER, WITH_FLOOR } from './targets.mjs';
import { runGroup } from './turns.mjs';

export const PATHS = ['password', 'refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'revoke_access', 'revoke_refresh', 'jwks', 'deny_list'];
// reads first, so the deny list and the store are as seeded; the writes after
export const RUN_ORDER = ['jwks', 'deny_list', 'introspect_access', 'introspect_refresh', 'client_credentials', 'refresh', 'password', 'revoke_access', 'revoke_refresh'];

/**
 * Runs the paths in `keys` (RUN_ORDER) against one Tollgate server on `env`. Returns the results'
 * sections: tollgate, and (when they ran) profiles, koa, floor, argon2 and peer.
 */
export async function pathsSection({ env, tmp, bench, seed, who, requests }, keys) {
  const results = {};
  const passwords = bench.config.passwords;
  const withLimits = wanted('limits');
  const withPeer = wanted('peer');
  // every server the paths are compared with is up for the whole phase; an idle one costs nothing
  const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [];
  note(`Tollgate: node ${[...nodeArgs, 'dist/src/main.js'].join(' ')}`);
  const tollgate = await startTollgate(env, tmp, [path.join(ROOT, 'dist', 'src', 'main.js')], nodeArgs, 'tollgate.log');
  const tollgateMemory = watchMemory(tollgate.proc.pid);
  const pids = { tollgate: tollgate.proc.pid };
  let koa;
  let koaMemory;
  if (withLimits && keys.some((k) => VS_KOA.has(k))) {
    koa = await startKoa();
    koaMemory = watchMemory(koa.proc.pid);
    pids.koa = koa.proc.pid;
  }
  // the floors (bench/floor.mjs) go with the limits: what the path costs with Tollgate's own code at zero
  let floor;
  let floorMemory;
  if (withLimits && keys.some((k) => WITH_FLOOR.has(k))) {
    const { proc, base } = await startFloor(Object.fromEntries([who.app, who.service].map((c) => [c.id, { secret: c.secret, scope: seed.SCOPE }])));
    floor = { proc, specs: await floorSpecs(base, who, keys, requests), base };
    floorMemory = watchMemory(proc.pid);
    pids.floor = proc.pid;
  }
  let peer;
  let peerMemory;
  if (withPeer && keys.some((k) => VS_PEER.has(k))) {
    note('peer: node-oidc-provider');
    const { proc, info, base } = await startPeer();
    peer = { proc, base, specs: await peerSpecs(info, base) };
    peerMemory = watchMemory(proc.pid);
    pids.peer = proc.pid;
  }

  const specs = requests.specs(await requests.readTokens(), tollgate.base);
  const rows = { tollgate: [], koa: [], floor: [], argon2: [], peer: [] };
  for (const key of keys) {
    const lanes = [await lane('tollgate', tollgate.base, specs[key])];
    if (koa && VS_KOA.has(key)) lanes.push(await lane('koa', koa.base, koaFor(key, requests.serviceAuth)));
    if (floor && WITH_FLOOR.has(key)) lanes.push(await lane('floor', floor.base, floor.specs[key]));
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
  if (floor) {
    results.floor = { rows: rows.floor, peakRssMb: floorMemory.stop().peakProcessMb };
    await floor.proc.stop();
  }
  if (rows.argon2.length > 0) results.argon2 = { rows: rows.argon2, memoryCostKiB: passwords.memoryCostKiB, timeCost: passwords.timeCost, parallelism: passwords.parallelism };
  if (peer) {
    results.peer = { rows: rows.peer, peakRssMb: peerMemory.stop().peakProcessMb };
    await peer.proc.stop();
  }
  return results;
}
