// The shape of src/ (docs/architecture.md), checked from the imports themselves: dependencies
// point down only (http, cli → oauth → domain → store), Kysely stays inside store/, Koa inside
// http/ and the composition root, and the verifier library imports nothing of the server.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** Layer of each top-level folder or file of src/: a module may import its own layer or lower ones. */
const LAYERS: Record<string, number> = {
  // the composition root and the programs: they may import anything
  'app.ts': 5, 'services.ts': 5, 'protocol.ts': 5, 'jobs.ts': 5, 'main.ts': 5, 'server.ts': 5, 'index.ts': 5, cli: 5,
  http: 4,
  oauth: 3, dpop: 3,
  tokens: 2, keys: 2, denylist: 2, users: 2, clients: 2, audit: 2, statuslist: 2,
  store: 1,
  // leaves every layer may use
  'config.ts': 0, config: 0, 'clock.ts': 0, 'logger.ts': 0, 'mallocEnv.ts': 0,
  // the verifier library (tollgate/verifier): the server shares its DPoP proof checks
  verifier: 0,
};

const COMPOSITION_ROOT = new Set(['app.ts', 'services.ts', 'protocol.ts', 'jobs.ts', 'main.ts', 'server.ts', 'index.ts']);

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) found.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

const top = (file: string) => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.js$/, '.ts');

const modules = files(SRC).map((file) => ({ file: path.relative(SRC, file), top: top(file), imports: imports(file) }));

describe('the layers of src/ (docs/architecture.md)', () => {
  it('knows the layer of every top-level folder and file', () => {
    for (const m of modules) if (m.top !== 'verifier') expect(LAYERS[m.top], m.file).toBeDefined();
  });

  it('has dependencies that point down only', () => {
    const upward: string[] = [];
    for (const m of modules) {
      if (m.top === 'verifier') continue;
      for (const spec of m.imports) {
        if (!spec.startsWith('.')) continue;
        const target = top(path.resolve(SRC, path.dirname(m.file), spec));
        if (target === m.top || target === '..') continue;
        if ((LAYERS[target] ?? 99) > (LAYERS[m.top] ?? -1)) upward.push(`${m.file} -> ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('lets only the domain and the composition root reach into store/ (the protocol and HTTP go through the domain)', () => {
    const through: string[] = [];
    for (const m of modules) {
      if (!['http', 'oauth'].includes(m.top)) continue;
      for (const spec of m.imports) if (spec.startsWith('.') && top(path.resolve(SRC, path.dirname(m.file), spec)) === 'store') through.push(`${m.file} -> ${spec}`);
    }
    expect(through).toEqual([]);
  });

  it('keeps Kysely inside store/', () => {
    expect(modules.filter((m) => m.top !== 'store' && m.imports.some((s) => s === 'kysely' || s.startsWith('kysely/'))).map((m) => m.file)).toEqual([]);
  });

  it('keeps Koa inside http/ and the composition root', () => {
    const koa = (s: string) => s === 'koa' || s.startsWith('@koa/');
    expect(modules.filter((m) => m.top !== 'http' && !COMPOSITION_ROOT.has(m.top) && m.imports.some(koa)).map((m) => m.file)).toEqual([]);
  });

  it('keeps the verifier library free of the server: jose and its own files only', () => {
    const outside = modules.filter((m) => m.top === 'verifier').flatMap((m) => m.imports.filter((s) => (s.startsWith('.') ? top(path.resolve(SRC, path.dirname(m.file), s)) !== 'verifier' : s !== 'jose' && !s.startsWith('node:'))).map((s) => `${m.file} -> ${s}`));
    expect(outside).toEqual([]);
  });
});
