// The report: the tables on stdout, one per section, and the list of missed targets.
import { COST, TARGETS, clean, cpuRatio, floorOf, limitOf, mark, peerOf, rowOf } from './targets.mjs';

function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const cell = (c, i) => (align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]));
  return [headers.map(cell).join('  '), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => r.map(cell).join('  ').trimEnd())].join('\n');
}

export function report(results) {
  const o = results.options;
  const m = results.machine;
  const lines = [`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, ${m.os}; load average at start ${m.loadAverageAtStart.join(' ')}`];
  lines.push(`Each path: ${o.warmupSeconds} s warm-up, then ${o.seconds} s measured in 1 s turns with what it is compared with; autocannon in the driver process, over loopback.`);
  if (results.dpop?.rows?.length) {
    const d = results.dpop.rows;
    lines.push('', 'DPoP (issue 17): client_credentials with a fresh proof on every request, in turns with the same request without one; server CPU per request');
    lines.push(table(['path', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'server CPU µs/req'], d.map((r) => [r.label, Math.round(r.rps), r.p50, r.p99, r.errors, us(r.serverCpuUsPerRequest) || '?']), ['l', 'r', 'r', 'r', 'r', 'r']));
    if (d[0]?.serverCpuUsPerRequest && d[1]?.serverCpuUsPerRequest) {
      const ratio = d[1].serverCpuUsPerRequest / d[0].serverCpuUsPerRequest;
      lines.push(`  with / without a proof: ${ratio.toFixed(2)}× the server CPU (≤${TARGETS.dpopCpu}× ${mark(ratio <= TARGETS.dpopCpu)})`);
    }
  }
  if (results.tollgate) {
    const rss = results.tollgate.peakRssMb;
    lines.push('', `Tollgate, one process (node dist/src/main.js), SQLite WAL. Peak RSS ${rss.toFixed(0)} MB (≤${TARGETS.rssMb} MB ${mark(rss <= TARGETS.rssMb)})`);
    lines.push('CPU µs/req: the server\'s user + system time (every thread) in its turns and until quiet after each, over the requests sent to it (answered, or in flight when a turn ended); each ratio is Tollgate\'s over the other\'s.');
    lines.push(
      table(
        ['path', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'RSS MB', 'CPU µs/req', 'limit CPU µs', '× limit (target)', 'peer CPU µs', '× peer (target)', 'peer req/s', 'req/s ÷ peer'],
        results.tollgate.rows.map((row) => {
          const cost = COST[row.key] ?? {};
          const limit = limitOf(results, row.key);
          const peer = peerOf(results, row.key);
          const vsLimit = limit?.cpuUs && row.serverCpuUsPerRequest ? row.serverCpuUsPerRequest / limit.cpuUs : undefined;
          const vsPeer = cpuRatio(row, peer);
          const rpsVsPeer = peer ? row.rps / peer.rps : undefined;
          return [
            row.label,
            row.connections,
            Math.round(row.rps),
            row.p50,
            row.key === 'password' ? `${row.p99}` : `${row.p99} ${mark(row.p99 <= TARGETS.p99Ms)}`,
            `${row.errors}${row.poolDry ? ' (pool ran dry)' : ''}${row.problem ? ' (check failed)' : ''} ${mark(clean(row))}`,
            row.rssMb === undefined ? '' : Math.round(row.rssMb),
            us(row.serverCpuUsPerRequest),
            limit ? `${limit.name} ${us(limit.cpuUs)}` : '',
            vsLimit === undefined ? '' : `${vsLimit.toFixed(2)}×${cost.max === undefined ? '' : ` (≤${cost.max}×) ${mark(vsLimit <= cost.max)}`}`,
            peer ? us(peer.serverCpuUsPerRequest) : '',
            vsPeer === undefined ? '' : `${vsPeer.toFixed(2)}×${cost.peerMax === undefined ? '' : ` (≤${cost.peerMax}×) ${mark(vsPeer <= cost.peerMax)}`}`,
            peer ? Math.round(peer.rps) : '',
            rpsVsPeer === undefined ? '' : `${rpsVsPeer.toFixed(2)}×${cost.peerRps === undefined ? '' : ` (≥${cost.peerRps}×) ${mark(rpsVsPeer >= cost.peerRps)}`}`,
          ];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'l', 'r', 'l'],
      ),
    );
  }
  const floors = (results.tollgate?.rows ?? []).map((row) => [row, floorOf(results, row.key)]).filter(([, f]) => f);
  if (floors.length > 0) {
    lines.push('', 'Floors (bench/floor.mjs): the same request to a Koa process that does only the work the path cannot avoid, in turns with it (information, not a target)');
    lines.push(
      table(
        ['path', 'floor CPU µs/req', 'floor × Koa POST', 'target', 'target − floor', 'Tollgate CPU µs/req', 'Tollgate × Koa POST', 'Tollgate × floor', 'floor errors'],
        floors.map(([row, f]) => {
          const max = COST[row.key]?.max;
          const limit = limitOf(results, row.key);
          const vsKoa = limit?.cpuUs && row.serverCpuUsPerRequest ? row.serverCpuUsPerRequest / limit.cpuUs : undefined;
          const x = (v) => (v === undefined ? '?' : `${v.toFixed(2)}×`);
          return [row.label, us(f.cpuUs), x(f.vsKoa), max === undefined ? '' : `≤${max}×`, max === undefined || f.vsKoa === undefined ? '' : x(max - f.vsKoa), us(row.serverCpuUsPerRequest), x(vsKoa), x(cpuRatio(row, f.row)), `${f.row.errors}${f.row.poolDry ? ' (pool ran dry)' : ''}${f.row.problem ? ' (check failed)' : ''}`];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  const others = [...(results.koa?.rows ?? []), ...(results.floor?.rows ?? []), ...(results.argon2?.rows ?? []), ...(results.peer?.rows ?? [])];
  if (others.length > 0) {
    lines.push('', 'What Tollgate was compared with, measured in turns with each path');
    lines.push(
      table(
        ['server', 'request', 'in turns with', 'conns', 'per second', 'p50 ms', 'p99 ms', 'errors', 'CPU µs/req'],
        others.map((r) => [
          { koa: 'bare Koa', floor: 'floor', peer: 'node-oidc-provider', argon2: 'raw argon2' }[r.subject],
          r.subject === 'argon2' ? `verify (m=${results.argon2.memoryCostKiB} KiB, t=${results.argon2.timeCost}, p=${results.argon2.parallelism})` : r.label,
          r.pairedWith,
          r.connections,
          r.subject === 'argon2' ? r.rps.toFixed(1) : Math.round(r.rps),
          r.subject === 'argon2' ? '' : r.p50,
          r.subject === 'argon2' ? '' : r.p99,
          r.subject === 'argon2' ? '' : `${r.errors}${r.poolDry ? ' (pool ran dry)' : ''}${r.problem ? ' (check failed)' : ''}`,
          us(r.serverCpuUsPerRequest),
        ]),
        ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const rss = [results.koa && `bare Koa ${results.koa.peakRssMb.toFixed(0)} MB`, results.floor && `floor ${results.floor.peakRssMb.toFixed(0)} MB`, results.peer && `node-oidc-provider ${results.peer.peakRssMb.toFixed(0)} MB`].filter(Boolean);
    if (rss.length > 0) lines.push(`Peak RSS: ${rss.join(', ')}`);
  }
  if (results.es256) lines.push('', `ES256 JWT signing with jose, alone, ${results.es256.concurrency} in flight: ${Math.round(results.es256.perSecond)} signatures/s (for reference)`);
  if (results.workers?.[1] && results.workers?.[2]) {
    const w = results.workers;
    lines.push('', `tollgate serve --workers N (node:cluster, one SQLite file), both up, in turns. CPU µs/req: the whole process tree (primary and workers). Peak RSS of all processes: ${w[1].peakRssMb.toFixed(0)} MB / ${w[2].peakRssMb.toFixed(0)} MB`);
    lines.push(
      table(
        ['path', 'workers=1 req/s', 'p99', 'errors', 'CPU µs/req', 'workers=2 req/s', 'p99', 'errors', 'CPU µs/req', 'CPU 2/1 (target)', 'req/s 2/1'],
        w[1].rows.map((one) => {
          const two = rowOf(w[2], one.key);
          const c = cpuRatio(two, one);
          return [one.label, Math.round(one.rps), one.p99, one.errors, us(one.serverCpuUsPerRequest), Math.round(two.rps), two.p99, two.errors, us(two.serverCpuUsPerRequest), c === undefined ? '?' : `${c.toFixed(2)}× (≤${TARGETS.workersCpu}×) ${mark(c <= TARGETS.workersCpu)}`, `${(two.rps / one.rps).toFixed(2)}×`];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r'],
      ),
    );
    if (w[1].rows[0]?.cpuPercent) {
      const cpu = (c) => `Tollgate ${c.server}%, driver ${c.driver}%, machine ${c.machine}%`;
      lines.push(`Processor time during the measured turns, in % of one core (${results.machine.cores} cores in all):`);
      for (const one of w[1].rows) lines.push(`  ${one.label}: --workers 1: ${cpu(one.cpuPercent)}; --workers 2: ${cpu(rowOf(w[2], one.key).cpuPercent)}`);
    }
  }
  if (results.verifier) lines.push('', verifierReport(results.verifier));
  if (results.postgres?.skipped) lines.push('', `PostgreSQL: skipped: ${results.postgres.skipped}`);
  else if (results.postgres?.[1]) {
    const p = results.postgres;
    lines.push(
      '',
      `Tollgate on PostgreSQL ${p.server} (same machine, one database): instance A alone, then A and B with the connections split between them (two autocannon runs at once), in turns. Peak RSS: A ${p.peakRssMb[0].toFixed(0)} MB, B ${p.peakRssMb[1].toFixed(0)} MB`,
    );
    lines.push(
      table(
        ['path', 'conns', '1 instance req/s', 'p50', 'p99', 'errors', '2 instances req/s', 'p50', 'p99', 'errors', '2/1'],
        p[1].rows.map((one) => {
          const two = rowOf(p[2], one.key);
          const errs = (row) => `${row.errors}${row.poolDry ? ' (pool ran dry)' : ''}${row.problem ? ' (check failed)' : ''} ${mark(clean(row))}`;
          return [one.label, one.connections, Math.round(one.rps), one.p50, one.p99, errs(one), Math.round(two.rps), two.p50, two.p99, errs(two), `${(two.rps / one.rps).toFixed(2)}×`];
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const cpu = (c) => `A ${c.a}%, B ${c.b}%, PostgreSQL ${c.postgres ?? '?'}%, driver ${c.driver}%, machine ${c.machine}%`;
    lines.push(`Processor time during the measured turns, in % of one core (${results.machine.cores} cores in all):`);
    for (const one of p[1].rows) lines.push(`  ${one.label}: 1 instance: ${cpu(one.cpuPercent)}; 2 instances: ${cpu(rowOf(p[2], one.key).cpuPercent)}`);
    if (!p[1].rows[0]?.cpuPercent?.postgres) lines.push('  (PostgreSQL is not on this machine, or its processes could not be read: its share is not shown)');
  }
  const failed = results.checks.filter((c) => !c.pass);
  lines.push('', `Targets: ${results.checks.length - failed.length} of ${results.checks.length} met.`);
  for (const c of failed) lines.push(`  ✗ ${c.what}: ${c.shown} (target ${c.goal})${c.note ? `; ${c.note}` : ''}`);
  return lines.join('\n');
}

const us = (x) => (x === undefined ? '' : x >= 100 ? String(Math.round(x)) : x.toFixed(1));

function verifierReport(v) {
  if (v.skipped) return `Verifier library: skipped: ${v.skipped}`;
  const jose = v.rows.find((r) => r.key === 'jose');
  const target = { verifier: TARGETS.verifierVsJose, verifier_cache: TARGETS.verifierCacheVsJose };
  const out = [`Verifier library (tollgate/verifier) in a process of its own, one verify at a time over ${v.tokens} tokens, in ${v.rounds} turns: processor time per verify (every thread)${v.problem ? `; check failed: ${v.problem}` : ''}`];
  out.push(
    table(
      ['contestant', 'verifies', 'CPU µs/verify', 'per core /s', '× jose (target)'],
      v.rows.map((r) => {
        const x = jose ? r.perCoreRate / jose.perCoreRate : undefined;
        return [r.label, r.ops, us(r.cpuUsPerVerify), Math.round(r.perCoreRate), x === undefined || r.key === 'jose' ? '' : `${x.toFixed(2)}×${target[r.key] ? ` (≥${target[r.key]}×) ${mark(x >= target[r.key])}` : ''}`];
      }),
      ['l', 'r', 'r', 'r', 'l'],
    ),
  );
  return out.join('\n');
}
