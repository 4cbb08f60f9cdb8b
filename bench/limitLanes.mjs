// The raw argon2 limit as a lane, and the machine's limits measured by bench/limits.mjs in a
// process of its own.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { mallocEnv } from '../dist/src/mallocEnv.js';
import { BENCH, ROOT } from './options.mjs';

/**
 * A lane that is not HTTP: raw argon2 verifies in a process of their own (bench/limits.mjs), which
 * also reports its processor time over the verifies it did (the CPU per verify of issue 19).
 */
export function argon2Lane(passwords) {
  return {
    subject: 'argon2',
    spec: { key: 'argon2', label: 'argon2id verify' },
    connections: passwords.maxConcurrentHashes,
    warm: async () => {},
    async slice(seconds) {
      const r = limit(['argon2', seconds, passwords.maxConcurrentHashes, passwords.memoryCostKiB, passwords.timeCost, passwords.parallelism]);
      return { responses: r.ops, seconds: r.seconds, errors: 0, codes: {}, latencies: [], cpuSeconds: r.cpuSeconds };
    },
    finish: async () => ({}),
  };
}

export function limit(args) {
  // the server's malloc settings, so raw argon2 runs under the same allocator
  const r = spawnSync(process.execPath, [path.join(BENCH, 'limits.mjs'), ...args.map(String)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...mallocEnv() } });
  if (r.status !== 0) throw new Error(`limits.mjs ${args[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}
