// The build: `npm ci` builds dist/; rebuild when a source file is newer, since the bench runs dist/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, note } from './options.mjs';

function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function ensureBuilt() {
  const main = path.join(ROOT, 'dist', 'src', 'main.js');
  const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  const newest = Math.max(newestSourceMs(path.join(ROOT, 'src')), newestSourceMs(path.join(ROOT, 'migrations')));
  if (built >= newest) return;
  note('building dist/ (tsc -p tsconfig.build.json) ...');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status === 0) return;
  if (built === 0) throw new Error('the build failed and there is no dist/ to benchmark');
  note('warning: the build failed; benchmarking the dist/ that is already there');
}
