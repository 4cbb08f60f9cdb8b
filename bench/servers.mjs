// Starting the servers: Tollgate as `npm start` (or bin/tollgate serve) runs it, the bare Koa
// endpoint (bench/bareKoa.mjs) and node-oidc-provider (bench/peer.mjs), each in a process of its own.
import crypto from 'node:crypto';
import path from 'node:path';
import { mallocEnv } from '../dist/src/mallocEnv.js';
import { BENCH, ROOT } from './options.mjs';
import { firstJsonLine, freePort, startProcess, track, waitReady } from './processes.mjs';

/** The environment of a Tollgate process: ours, without any TOLLGATE_* of the caller's. */
export function tollgateEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  // one issuer for the driver and every server: the driver mints tokens that servers on other ports
  // must accept, and without one each would take its own listen address (iss would not match)
  return { ...env, TOLLGATE_ISSUER: 'http://localhost:3000', ...extra };
}

/** A server's environment on `port`, with the malloc arena setting `npm start` uses. */
export function serverEnv(env, port) {
  return { ...env, ...mallocEnv(), TOLLGATE_PORT: String(port) };
}

/** Tollgate (`args`: its script and arguments) on a free port, ready; its stdout goes to `log` in `tmp`. */
export async function startTollgate(env, tmp, args, nodeArgs, log) {
  const port = await freePort();
  const proc = track(startProcess(process.execPath, [...nodeArgs, ...args], { env: serverEnv(env, port), cwd: ROOT, stdoutFile: path.join(tmp, log) }));
  await waitReady(proc, `http://127.0.0.1:${port}/readyz`);
  return { proc, base: `http://127.0.0.1:${port}` };
}

export async function startKoa() {
  const proc = track(startProcess(process.execPath, [path.join(BENCH, 'bareKoa.mjs')], { cwd: ROOT }));
  return { proc, base: `http://127.0.0.1:${(await firstJsonLine(proc)).port}` };
}

/** The floors of the paths (bench/floor.mjs), knowing `clients`: id -> { secret, scope } (only the secret's SHA-256 is passed on). */
export async function startFloor(clients) {
  const known = Object.fromEntries(Object.entries(clients).map(([id, c]) => [id, { secretSha256: crypto.hash('sha256', c.secret, 'hex'), scope: c.scope }]));
  const env = { ...process.env, FLOOR_CLIENTS: JSON.stringify(known), FLOOR_ISSUER: tollgateEnv({}).TOLLGATE_ISSUER };
  const proc = track(startProcess(process.execPath, [path.join(BENCH, 'floor.mjs')], { env, cwd: ROOT }));
  return { proc, base: `http://127.0.0.1:${(await firstJsonLine(proc)).port}` };
}

/** node-oidc-provider, and its startup line (port, client credentials, resource). */
export async function startPeer() {
  const proc = track(startProcess(process.execPath, [path.join(BENCH, 'peer.mjs')], { cwd: ROOT }));
  const info = await firstJsonLine(proc);
  return { proc, info, base: `http://127.0.0.1:${info.port}` };
}
