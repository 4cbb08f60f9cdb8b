// The server's malloc settings (src/mallocEnv.ts): the same in `npm start` and for each
// `--workers` worker, and an operator's own values win.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MALLOC_DEFAULTS, mallocEnv } from '../../src/mallocEnv.js';

describe('malloc settings', () => {
  it('defaults to one arena', () => {
    expect(mallocEnv({}).MALLOC_ARENA_MAX).toBe('1');
  });

  it('asks glibc for transparent huge pages, so an argon2 buffer is not faulted in 4 KiB at a time', () => {
    expect(mallocEnv({}).GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=1');
  });

  it("leaves an operator's own GLIBC_TUNABLES alone", () => {
    expect(mallocEnv({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }).GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=0');
  });

  it('keeps what the environment already sets', () => {
    expect(mallocEnv({ MALLOC_ARENA_MAX: '4', OTHER: 'x' })).toEqual({ ...MALLOC_DEFAULTS, MALLOC_ARENA_MAX: '4' });
  });

  it('is what `npm start` sets, each overridable', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    for (const [name, value] of Object.entries(MALLOC_DEFAULTS)) expect(pkg.scripts.start).toContain(`${name}=\${${name}:-${value}}`);
  });
});
