// What Linux's /proc says about processes: a process tree, its memory (resident set, high-water
// marks), processor time, a parent and a command name, and the whole machine's busy time.
import fs from 'node:fs';

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
