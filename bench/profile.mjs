// Where a server's CPU time went, from a `node --cpu-prof` profile: self time by area (a package,
// a Tollgate module, Node internals, GC), the hottest functions, and inclusive time of Tollgate's
// own functions. `node bench/profile.mjs FILE.cpuprofile [top]` prints the same summary.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

function area(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/dist\/((?:src|migrations)\/.*)$/.exec(url);
  if (own) return `tollgate ${own[1].replace(/\.js$/, '')}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/');
  return url.replace(/^.*\//, '');
}

function label(cf) {
  const file = cf.url ? cf.url.replace(/^.*\/(node_modules\/)?/, '') : '';
  return `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`;
}

export function summarize(file, top = 20) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const areas = new Map();
  const inclusive = new Map();
  const stackHas = (id, re) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) if (re.test(byId.get(cur)?.callFrame.url ?? '')) return true;
    return false;
  };
  // from the first request on: module loading, migrations and key loading are not a hot path
  const first = profile.samples.findIndex((id) => stackHas(id, /\/dist\/src\/http\//));
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    if (i < first) return;
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const cf = node.callFrame;
    total += dt;
    if (cf.functionName === '(idle)') {
      idle += dt;
      return;
    }
    const l = label(cf);
    self.set(l, (self.get(l) ?? 0) + dt);
    const a = area(cf.url, cf.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    // inclusive: each of our functions on the stack once per sample
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      if (!/\/dist\/src\//.test(f.url)) continue;
      const fl = label(f);
      if (seen.has(fl)) continue;
      seen.add(fl);
      inclusive.set(fl, (inclusive.get(fl) ?? 0) + dt);
    }
  });
  const busy = total - idle;
  const rank = (m, n) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: busy > 0 ? us / busy : 0 }));
  return { file, totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), areas: rank(areas, top), self: rank(self, top), inclusive: rank(inclusive, top) };
}

export function formatSummary(s) {
  const pct = (x) => `${(x * 100).toFixed(1).padStart(5)}%`;
  const block = (title, rows) => [title, ...rows.map((r) => `  ${pct(r.share)}  ${r.name}`)].join('\n');
  return [
    `CPU profile ${s.file}: ${(s.busyMs / 1000).toFixed(1)} s busy of ${(s.totalMs / 1000).toFixed(1)} s (from the first request on; shares are of busy time)`,
    block('self time by area:', s.areas),
    block('hottest functions (self):', s.self),
    block("Tollgate's functions (inclusive):", s.inclusive),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/profile.mjs FILE.cpuprofile [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSummary(summarize(file, Number(process.argv[3] ?? 20)))}\n`);
}
