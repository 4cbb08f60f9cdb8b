// createApp({ config, store, clock, logger }): a complete Tollgate over one store, with no globals,
// so tests run many isolated servers in one process.
import type { Server } from 'node:http';
import Koa from 'koa';
import { sql } from 'kysely';
import { type Clock, systemClock } from './clock.js';
import { type Config, parseDuration } from './config.js';
import { errorBodies, refuseCredentialsInQuery, requestLog, securityHeaders } from './http/middleware.js';
import { createRouter } from './http/routes.js';
import type { SseHub } from './http/sse.js';
import { type Logger, createLogger } from './logger.js';
import type { ProtocolEvents, Services } from './oauth/services.js';
import { TokenEndpoint } from './oauth/tokenEndpoint.js';
import { createServices } from './services.js';
import { type Store, migrate } from './store/database.js';
import { RefreshTokenRepository } from './store/refreshTokens.js';

export interface AppOptions {
  config: Config;
  store: Store;
  clock?: Clock;
  logger?: Logger;
  kek?: Buffer;
  /** Run background jobs (key reload, deny-list sync, pruning, scheduled rotation). Default true. */
  jobs?: boolean;
  events?: ProtocolEvents;
  metrics?: { contentType: string; render(): Promise<string> };
}

export interface App {
  koa: Koa;
  services: Services;
  tokenEndpoint: TokenEndpoint;
  callback(): ReturnType<Koa['callback']>;
  /** Runs the periodic jobs once (tests drive them with an injected clock). */
  tick(): Promise<void>;
  /** Closes SSE streams (with a retry hint) and stops the jobs. The store stays open: its owner closes it. */
  close(): Promise<void>;
  hub: SseHub;
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config, store } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.log.level);
  await migrate(store);
  const services = createServices({ config, store, clock, logger, ...(options.kek ? { kek: options.kek } : {}), ...(options.events ? { events: options.events } : {}) });
  await services.keys.ensureInitialKeys(config.keys.algorithm);
  await services.keyring.refresh(); // a wrong KEK fails here, before the server listens
  await services.denyList.sync();

  const tokenEndpoint = new TokenEndpoint(services);
  const hub: SseHub = { streams: new Set(), heartbeatMs: config.denyList.heartbeatSeconds * 1000 };
  const koa = new Koa({ proxy: config.server.trustProxy });
  koa.silent = true;
  koa.use(securityHeaders(config.issuer.startsWith('https:')));
  koa.use(requestLog(logger));
  koa.use(errorBodies(logger));
  koa.use(refuseCredentialsInQuery());
  const router = createRouter({
    services,
    tokenEndpoint,
    hub,
    metrics: options.metrics,
    storeReachable: async () => {
      try {
        await sql`select 1`.execute(store.db);
        return true;
      } catch {
        return false;
      }
    },
  });
  koa.use(router.routes());
  koa.use(router.allowedMethods({ throw: true }));

  const maintenance = createMaintenance(services, config, logger);
  const timers: NodeJS.Timeout[] = [];
  if (options.jobs !== false) {
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
    every(config.keys.reloadIntervalMs, () => services.keyring.refresh(), 'key reload');
    every(config.denyList.syncIntervalMs, () => services.denyList.sync(), 'deny-list sync');
    every(config.denyList.pruneIntervalSeconds * 1000, () => maintenance.prune(), 'prune');
    every(Math.min(60_000, config.keys.reloadIntervalMs * 10), () => maintenance.keys(), 'key schedule');
  }

  return {
    koa,
    services,
    tokenEndpoint,
    hub,
    callback: () => koa.callback(),
    async tick() {
      await maintenance.keys();
      await maintenance.prune();
      await services.keyring.refresh();
      await services.denyList.sync();
    },
    async close() {
      for (const t of timers) clearInterval(t);
      for (const s of hub.streams) s.end('retry: 1000\n\n');
      hub.streams.clear();
    },
  };
}

function createMaintenance(services: Services, config: Config, logger: Logger) {
  const rotateEvery = config.keys.rotateEvery ? (parseDuration(config.keys.rotateEvery) ?? 0) * 1000 : 0;
  return {
    /** Scheduled rotation (one process wins: the rotation is a compare-and-set on the active key) and retired-key expiry. */
    async keys() {
      const now = services.clock.now();
      if (rotateEvery > 0) {
        const [active] = await services.keys.repo.byState('active');
        if (active && (active.activated_at ?? active.created_at) + rotateEvery <= now) {
          const r = await services.keys.rotate(config.keys.algorithm, { ifActive: active.kid });
          if (r) {
            logger.info({ retired: r.retired, activated: r.activated, next: r.next }, 'signing key rotated on schedule');
            await services.audit.record({ type: 'key.rotated', detail: { ...r, scheduled: true } });
          }
        }
      }
      // a retired key stays published until every token it signed has expired
      const keep = (await services.denyWindowSeconds()) * 1000;
      const removed = await services.keys.repo.removeRetiredBefore(now - keep, now);
      for (const kid of removed) await services.audit.record({ type: 'key.removed', detail: { kid, reason: 'expired' } });
      if (removed.length > 0 || rotateEvery > 0) await services.keyring.refresh();
    },
    async prune() {
      const now = services.clock.now();
      const deny = await services.denyList.prune();
      const failures = await services.throttle.prune();
      const families = await new RefreshTokenRepository(services.db).pruneExpired(now);
      if (deny + failures + families > 0) logger.debug({ deny, failures, families }, 'pruned expired rows');
    },
  };
}

/** Applies the HTTP server limits of config.server (slow clients time out). */
export function applyServerLimits(server: Server, config: Config): void {
  server.headersTimeout = config.server.headersTimeoutMs;
  server.requestTimeout = config.server.requestTimeoutMs;
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
}
