// Where the processor time went while a lane was measured.
import { cpuSeconds, machineBusySeconds } from './procfs.mjs';

/**
 * Wraps a lane so that its row also says where the processor time went during its measured slices:
 * each of `who` (a function listing the pids of a process tree), the driver and the whole machine
 * (the rest is someone else's), in % of one core.
 * On a machine with few cores this is what explains a scaling factor.
 */
export function withCpu(l, who) {
  const used = Object.fromEntries([...Object.keys(who), 'driver', 'machine'].map((k) => [k, 0]));
  let wall = 0;
  const snapshot = () => ({ at: performance.now(), machine: machineBusySeconds(), driver: (process.cpuUsage().user + process.cpuUsage().system) / 1e6, ...Object.fromEntries(Object.entries(who).map(([k, pids]) => [k, cpuSeconds(pids())])) });
  const { slice, finish } = l;
  return {
    ...l,
    async slice(seconds) {
      const before = snapshot();
      const r = await slice(seconds);
      const after = snapshot();
      wall += (after.at - before.at) / 1000;
      for (const k of Object.keys(used)) used[k] += Math.max(0, after[k] - before[k]);
      return r;
    },
    async finish() {
      const cpu = Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Math.round((v / Math.max(wall, 0.001)) * 100)]));
      // `this`: the wrapper, which warm() marked with the first measured token
      return { ...(await finish.call(this)), cpuPercent: cpu };
    },
  };
}
