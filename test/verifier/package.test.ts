// tollgate/verifier is its own entry point (package.json exports) and depends on jose and Node's
// built-ins only: an API installs it without pulling in the server.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the tollgate/verifier entry point', () => {
  it("resolves through package.json exports (self-reference) to the built module", () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', "const m = await import('tollgate/verifier'); console.log(JSON.stringify(Object.keys(m).sort()))"], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expect.arrayContaining(['VerificationError', 'createVerifier', 'requireToken']));
  });

  it('declares its types for TypeScript consumers', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const entry = pkg.exports['./verifier'];
    expect(entry.types).toBe('./dist/src/verifier/index.d.ts');
    expect(fs.existsSync(path.join(root, entry.types))).toBe(true);
  });

  it('imports only jose, node: built-ins and its own files (never the server, never koa)', () => {
    const dir = path.join(root, 'src', 'verifier');
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      const specifiers = [...source.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      for (const s of specifiers) expect(s === 'jose' || s.startsWith('node:') || /^\.\/[\w-]+\.js$/.test(s), `${file} imports ${s}`).toBe(true);
    }
  });
});
