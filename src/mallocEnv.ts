// glibc malloc settings for the server process, set in its environment before it starts (`npm
// start`, each `--workers` worker, the bench's servers). Values already in the environment win.
// MALLOC_ARENA_MAX=1: glibc keeps an arena per thread that ever ran argon2, each holding on to
// freed 19 MiB buffers; one arena keeps the peak in check at no measurable cost (argon2 allocates
// once per hash, so the threads hardly contend for it).
export const MALLOC_DEFAULTS: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
};

/** The defaults under whatever `env` already sets. */
export function mallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(MALLOC_DEFAULTS).map(([k, v]) => [k, env[k] ?? v]));
}
