// glibc malloc settings for the server process, set in its environment before it starts (`npm
// start`, each `--workers` worker, the bench's servers). Values already in the environment win.
// MALLOC_ARENA_MAX=1: glibc keeps an arena per thread that ever ran argon2, each holding on to
// freed 19 MiB buffers; one arena keeps the peak in check at no measurable cost (argon2 allocates
// once per hash, so the threads hardly contend for it).
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc 2.35+; ignored elsewhere): malloc asks for
// transparent huge pages (madvise mode, the usual default) on the heap it grows. Each hash's
// 19 MiB buffer was faulted in 4 KiB at a time, 400-1,400 page faults a hash (1-3 ms of system
// time, a third of what a password grant cost above raw argon2); in 2 MiB pages it takes about
// ten, and argon2's random reads over the buffer miss the TLB less. Measured (issue 19): a grant
// 25.3-26.7 -> 22.1-23.1 ms of CPU, raw argon2 20.4-21.6 -> 19.5-20.8 ms, peak RSS not higher.
export const MALLOC_DEFAULTS: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
};

/** The defaults under whatever `env` already sets. */
export function mallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(MALLOC_DEFAULTS).map(([k, v]) => [k, env[k] ?? v]));
}
