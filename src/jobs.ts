// What a running server does in the background, besides answering requests: reload keys, pull the
// deny list (and, on PostgreSQL, LISTEN for other instances' revocations), prune expired rows, and
// drive the key schedule. Each job runs at most once at a time.
import type { Logger } from './logger.js';
import { keySchedule } from './keys/schedule.js';
import type { Domain } from './services.js';
import type { Listener, Store } from './store/database.js';
import { DENY_LIST_CHANNEL } from './store/denyList.js';

export interface Jobs {
  /** Runs every job once (tests drive them with an injected clock). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export async function startJobs(d: Domain, store: Store, logger: Logger, options: { periodic: boolean }): Promise<Jobs> {
  const { config } = d;
  const keys = keySchedule({ keys: d.keys, keyring: d.keyring, horizon: d.horizon, audit: d.audit, clock: d.clock, logger, policy: config.keys });
  const prune = async () => {
    const deny = await d.denyList.prune();
    const failures = await d.throttle.prune();
    const families = await d.families.pruneExpired();
    const slots = await d.statusLists.prune();
    const dpopJtis = await d.dpop.prune(d.clock.now());
    if (deny + failures + families + slots.freed + dpopJtis > 0) logger.debug({ deny, failures, families, slots, dpopJtis }, 'pruned expired rows');
  };
  const timers: NodeJS.Timeout[] = [];
  if (options.periodic) {
    const every = (ms: number, job: () => Promise<unknown>, name: string) => {
      let running = false;
      const t = setInterval(() => {
        if (running) return;
        running = true;
        job()
          .catch((err: unknown) => logger.error({ err, job: name }, 'background job failed'))
          .finally(() => (running = false));
      }, ms);
      t.unref();
      timers.push(t);
    };
    every(config.keys.reloadIntervalMs, () => d.keyring.refresh(), 'key reload');
    every(config.denyList.syncIntervalMs, () => d.denyList.sync(), 'deny-list sync');
    every(config.denyList.pruneIntervalSeconds * 1000, prune, 'prune');
    every(Math.min(60_000, config.keys.reloadIntervalMs * 10), keys, 'key schedule');
  }

  // PostgreSQL: deny-list writes NOTIFY on commit and every instance LISTENs, so a revocation made on
  // any instance reaches this one's SSE subscribers at once; the periodic sync stays as the fallback
  // (and is all there is on SQLite, where --workers share one file)
  let listener: Listener | undefined;
  if (store.listen) {
    const onNotify = () => void d.denyList.sync().catch((err: unknown) => logger.warn({ err }, 'deny-list sync after NOTIFY failed'));
    listener = await store.listen(DENY_LIST_CHANNEL, onNotify, (err) => logger.warn({ err: err.message }, 'deny-list LISTEN connection lost; reconnecting'));
  }

  return {
    async tick() {
      await keys();
      await prune();
      await d.keyring.refresh();
      await d.denyList.sync();
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      await listener?.close();
    },
  };
}
