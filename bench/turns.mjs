// Lanes that will be compared with each other, measured in turns: a burst of load from elsewhere
// on the machine falls on all of them alike, so their ratios hold on a noisy machine.
import { opts, note } from './options.mjs';
import { percentile } from './cannon.mjs';
import { cpuSeconds, memoryNow, processTree } from './procfs.mjs';
import { sleep } from './processes.mjs';

/**
 * After a slice, what the server still does is the slice's: the requests autocannon left in flight
 * when it dropped its connections (a password grant's hashes: tens of ms each), a log line written.
 * Reads the server's processor time until it stops growing (one 10 ms tick or less in 50 ms), at
 * most a second.
 */
async function settledCpu(read) {
  let last = read();
  for (let waited = 0; waited < 1000; waited += 50) {
    await sleep(50);
    const now = read();
    if (now - last <= 0.01) return now;
    last = now;
  }
  return last;
}

/**
 * Measures lanes that will be compared with each other: each is warmed up, then they take turns in
 * one-second slices until each has had `opts.seconds`, so a burst of load from elsewhere on the
 * machine falls on all of them alike. Latency percentiles are over every 2xx response of the slices.
 * Each row also has `serverCpuUsPerRequest` (issue 19): the processor time (user + system, every
 * thread: /proc/<pid>/stat) of the lane's server process tree (`pids[subject]`) during its own
 * slices and until it is quiet after each, over the requests sent to it (the answered ones and
 * those autocannon left in flight, whose work the server did too); a lane that is not HTTP reports
 * `cpuSeconds` per slice, over every operation it completed.
 */
export async function runGroup(lanes, pids) {
  for (const l of lanes) await l.warm();
  const acc = lanes.map(() => ({ responses: 0, seconds: 0, errors: 0, codes: {}, latencies: [], cpu: 0, cpuKnown: false, sent: 0 }));
  const cpuOf = (l) => (pids[l.subject] ? cpuSeconds(processTree(pids[l.subject])) : undefined);
  for (let round = 0; round < opts.seconds; round++) {
    for (const [i, l] of lanes.entries()) {
      const before = cpuOf(l);
      const r = await l.slice(1);
      const a = acc[i];
      a.sent += r.sent ?? r.responses;
      if (before !== undefined) {
        a.cpu += (await settledCpu(() => cpuOf(l))) - before;
        a.cpuKnown = true;
      } else if (r.cpuSeconds !== undefined) {
        a.cpu += r.cpuSeconds;
        a.cpuKnown = true;
      }
      a.responses += r.responses;
      a.seconds += r.seconds;
      a.errors += r.errors;
      for (const [code, n] of Object.entries(r.codes)) a.codes[code] = (a.codes[code] ?? 0) + n;
      for (const ms of r.latencies) a.latencies.push(ms);
    }
  }
  const rows = [];
  for (const [i, l] of lanes.entries()) {
    const a = acc[i];
    const row = {
      subject: l.subject,
      key: l.spec.key,
      label: l.spec.label,
      connections: l.connections,
      rps: a.responses / Math.max(a.seconds, 0.001),
      responses: a.responses,
      seconds: Math.round(a.seconds * 100) / 100,
      p50: percentile(a.latencies, 0.5),
      p99: percentile(a.latencies, 0.99),
      errors: a.errors,
      codes: a.codes,
      serverCpuUsPerRequest: a.cpuKnown && a.sent > 0 ? Math.round((a.cpu * 1e6 * 10) / a.sent) / 10 : undefined,
      sent: a.sent,
      ...(await l.finish()),
    };
    // which path grows a server: its resident set right after, and the high-water mark so far
    if (pids[l.subject]) Object.assign(row, memoryNow(pids[l.subject]));
    note(`    ${row.subject}: ${Math.round(row.rps)}/s${l.subject === 'argon2' ? '' : `, p50 ${row.p50} ms, p99 ${row.p99} ms, errors ${row.errors}${row.errors ? ` ${JSON.stringify(row.codes)}` : ''}`}${row.serverCpuUsPerRequest === undefined ? '' : `, CPU ${Math.round(row.serverCpuUsPerRequest)} µs/req`}${row.rssMb ? `, RSS ${row.rssMb.toFixed(0)} MB` : ''}`);
    rows.push(row);
  }
  return rows;
}
