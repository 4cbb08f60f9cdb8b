// glibc malloc settings for the server process, set in its environment before it starts (`npm
// start`, and each `--workers` worker). Values already in the environment win.
// - MALLOC_ARENA_MAX=1: glibc keeps an arena per thread that ever ran argon2, each holding on to
//   freed 19 MiB buffers; one arena keeps the peak in check at no measurable cost (argon2
//   allocates once per hash, so the threads hardly contend for it).
// - MALLOC_MMAP_THRESHOLD_=32 MiB with MALLOC_TRIM_THRESHOLD_=64 MiB: an argon2 buffer is taken from
//   the heap and given back to it, not mapped and unmapped, and the heap keeps up to 64 MiB free at
//   its top instead of returning it to the kernel. Left to glibc, the buffers were mapped afresh
//   often enough for the hashing threads to take 490 page faults a hash (10 with these settings).
export const MALLOC_DEFAULTS: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(64 * 1024 * 1024),
};

/** The defaults under whatever `env` already sets. */
export function mallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(MALLOC_DEFAULTS).map(([k, v]) => [k, env[k] ?? v]));
}
