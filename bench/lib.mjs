// What the driver needs besides the paths themselves: child processes, free ports, peak RSS from
// /proc, one autocannon run, token pools.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A child process we started: its pid, the tail of its stderr, whether it exited, and stop()
 * (SIGTERM to this pid only, SIGKILL after a deadline).
 */
export function startProcess(command, args, { env, cwd, stdoutFile } = {}) {
  const out = stdoutFile ? fs.openSync(stdoutFile, 'a') : 'pipe';
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') fs.closeSync(out);
  const proc = { child, pid: child.pid, stderr: '', exited: false, code: null };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    proc.stderr = (proc.stderr + s).slice(-8000);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exited = true;
      proc.code = code ?? signal;
      resolve();
    });
  });
  proc.stop = async (deadlineMs = 15000) => {
    if (proc.exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!proc.exited) child.kill('SIGKILL');
    }, deadlineMs);
    await exited;
    clearTimeout(timer);
  };
  proc.exitedPromise = exited;
  return proc;
}

/** The first line of a child's stdout parsed as JSON (the port our helper servers print). */
export function firstJsonLine(proc, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no startup line within ${timeoutMs} ms; stderr: ${proc.stderr.slice(-500)}`)), timeoutMs);
    proc.child.stdout.setEncoding('utf8');
    const onData = (s) => {
      buf += s;
      for (const line of buf.split('\n').slice(0, -1)) {
        try {
          const parsed = JSON.parse(line);
          clearTimeout(timer);
          proc.child.stdout.off('data', onData);
          proc.child.stdout.resume(); // keep draining whatever follows
          resolve(parsed);
          return;
        } catch {
          // not our line: a library's notice
        }
      }
    };
    proc.child.stdout.on('data', onData);
    proc.child.once('exit', () => reject(new Error(`exited before starting: ${proc.stderr.slice(-800)}`)));
  });
}

/** Polls `url` until it answers 200 (readiness), or fails when the process dies first. */
export async function waitReady(proc, url, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exited) throw new Error(`the server exited (${proc.code}) before it was ready:\n${proc.stderr.slice(-1500)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms:\n${proc.stderr.slice(-1500)}`);
}

function childrenOf(pid) {
  try {
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    return tasks.flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** The pid and all its descendants (cluster workers). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]));
  return out;
}

function memoryKb(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    return { rss: rss ? Number(rss[1]) : 0, hwm: hwm ? Number(hwm[1]) : 0 };
  } catch {
    return undefined;
  }
}

/** The resident set of a process tree now, and its processes' largest high-water mark, in MB. */
export function memoryNow(pid) {
  let rss = 0;
  let hwm = 0;
  for (const p of processTree(pid)) {
    const m = memoryKb(p);
    if (!m) continue;
    rss += m.rss;
    hwm = Math.max(hwm, m.hwm);
  }
  return { rssMb: rss / 1024, hwmMb: hwm / 1024 };
}

/**
 * Watches a process tree's memory: the high-water mark (VmHWM) of each process, which the kernel
 * keeps exactly, and the largest sum of resident sets seen in 100 ms samples (for a cluster).
 */
export function watchMemory(pid) {
  const hwm = new Map();
  let peakSumKb = 0;
  const sample = () => {
    let sum = 0;
    for (const p of processTree(pid)) {
      const m = memoryKb(p);
      if (!m) continue;
      sum += m.rss;
      hwm.set(p, Math.max(hwm.get(p) ?? 0, m.hwm));
    }
    peakSumKb = Math.max(peakSumKb, sum);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    processes: () => processTree(pid).length,
    /** Call before the process exits: the last sample reads the final high-water marks. */
    stop() {
      sample();
      clearInterval(timer);
      const perProcessMb = Math.max(0, ...hwm.values()) / 1024;
      return { peakProcessMb: perProcessMb, peakTotalMb: Math.max(peakSumKb / 1024, perProcessMb), processes: hwm.size };
    },
  };
}

/** Tokens a write path consumes, each once. Running dry sends the last one again (and is reported). */
export class Pool {
  constructor() {
    this.items = [];
    this.next = 0;
    this.dry = false;
  }
  add(items) {
    // a loop, not push(...items): a pool of 100k tokens would overflow the call stack as arguments
    for (const item of items) this.items.push(item);
  }
  get remaining() {
    return this.items.length - this.next;
  }
  take() {
    if (this.next < this.items.length) return this.items[this.next++];
    this.dry = true;
    return this.items[this.items.length - 1];
  }
}

/** Round-robin over a fixed set (introspection: reading a token does not use it up). */
export function cycle(items) {
  let i = 0;
  return () => items[i++ % items.length];
}

/**
 * One autocannon run. `nextBody` makes every request's body (pools, cycles); otherwise `body` is
 * sent each time. The rate is counted from responses over the time they took (autocannon's own
 * duration is rounded to its one-second ticks); `latencies` has every 2xx response's time in ms,
 * so runs in slices can be pooled into exact percentiles.
 */
export function cannon({ url, method = 'GET', headers = {}, body, nextBody, connections, seconds }) {
  const opts = { url, method, headers, connections, duration: seconds, timeout: 10, pipelining: 1 };
  if (method === 'POST') opts.headers = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  if (body !== undefined) opts.body = body;
  if (nextBody) opts.requests = [{ setupRequest: (req) => ({ ...req, body: nextBody() }) }];
  let responses = 0;
  let last = 0;
  const latencies = [];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => {
      if (err) return reject(err);
      const elapsed = Math.max(0.001, ((last || performance.now()) - started) / 1000);
      const codes = Object.fromEntries(Object.entries(res.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
      resolve({
        rps: responses / elapsed,
        responses,
        seconds: elapsed,
        p50: res.latency.p50,
        p99: res.latency.p99,
        errors: res.non2xx + res.errors,
        codes,
        socketErrors: res.errors,
        timeouts: res.timeouts,
        latencies,
      });
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      responses++;
      last = performance.now();
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/** The q-quantile (0..1) of a list of numbers, nearest rank. */
export function percentile(values, q) {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] * 10) / 10;
}

/** Processor time (user + system) used so far by the processes in `pids`, in seconds (Linux /proc). */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // after the command name (which may hold spaces): state is field 3, utime 14, stime 15
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited between listing and reading
    }
  }
  // USER_HZ is 100 on every Linux architecture Node runs on
  return ticks / 100;
}

/** The parent of a process, or undefined when it is gone (Linux /proc). */
export function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The command name of a process, or undefined when there is no such process here. */
export function commandOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Processor time the whole machine has spent busy (not idle or waiting on I/O), in seconds. */
export function machineBusySeconds() {
  try {
    const [, ...t] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal: all but idle and iowait
    return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / 100;
  } catch {
    return 0;
  }
}
