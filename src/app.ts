// createApp({ config, store, clock, logger }): a complete Tollgate over one store, with no globals,
// so tests run many isolated servers in one process.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Koa from 'koa';
import { sql } from 'kysely';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import { ArrivalStamper } from './http/arrival.js';
import { documentResponder } from './http/documents.js';
import { errorBodies, refuseCredentialsInQuery, requestLog, requestLogger, securityHeaderList, securityHeaders } from './http/middleware.js';
import { createRouter, publicDocuments } from './http/routes.js';
import { SseHub } from './http/sse.js';
import { keySchedule } from './keys/schedule.js';
import { type Logger, createLogger } from './logger.js';
import { Metrics } from './metrics.js';
import type { ProtocolEvents, Services } from './oauth/services.js';
import { TokenEndpoint } from './oauth/tokenEndpoint.js';
import { createServices } from './services.js';
import { ClientRepository } from './store/clients.js';
import { type Listener, type Store, migrate } from './store/database.js';
import { DENY_LIST_CHANNEL } from './store/denyList.js';
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
  /** The request handler for an http.Server: the public documents first (documents.ts), then Koa. */
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
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
  // GET /metrics by default: a registry of this app's own (tests build many apps in one process)
  const builtInMetrics = options.metrics ? undefined : new Metrics();
  const events = options.events ?? builtInMetrics?.events;
  const services = createServices({ config, store, clock, logger, ...(options.kek ? { kek: options.kek } : {}), ...(events ? { events } : {}) });
  if (await services.keys.ensureInitialKeys(config.keys.algorithm)) {
    for (const key of await services.keys.repo.all()) await services.audit.record({ type: 'key.generated', detail: { kid: key.kid, alg: key.alg, state: key.state, initial: true } });
  }
  await services.keyring.refresh(); // a wrong KEK fails here, before the server listens
  await services.horizon.noteDefault();
  await services.denyList.sync();

  const tokenEndpoint = new TokenEndpoint(services);
  const clientRepo = new ClientRepository(store.db);
  const hub = new SseHub({
    heartbeatMs: config.denyList.heartbeatSeconds * 1000,
    maxStreamsPerClient: config.denyList.maxStreamsPerClient,
    maxStreams: config.denyList.maxStreams,
    secretHashes: (ids) => clientRepo.secretHashes(ids),
    logger,
  });
  // removed or rotated here: its streams end at once (the hub's re-check catches the CLI's changes)
  services.clients.onCredentialsChanged((clientId) => hub.endClient(clientId));
  // Behind a trusted proxy, only the address it appended (the last X-Forwarded-For entry) is
  // believed: earlier entries come from the client and would let it dodge the per-IP throttle.
  const koa = new Koa({ proxy: config.server.trustProxy, maxIpsCount: 1 });
  koa.silent = true;
  if (builtInMetrics) {
    builtInMetrics.observe(services, hub);
    // outermost, so it sees the status the error middleware settled on
    koa.use(builtInMetrics.http());
  }
  const https = config.issuer.startsWith('https:');
  const documents = publicDocuments(services, tokenEndpoint.grantTypes);
  koa.use(securityHeaders(https));
  koa.use(requestLog(logger));
  koa.use(errorBodies(logger));
  koa.use(refuseCredentialsInQuery());
  const arrivals = new ArrivalStamper(services.spends, clock);
  const router = createRouter({
    services,
    arrivals,
    tokenEndpoint,
    hub,
    metrics: options.metrics ?? builtInMetrics,
    documents,
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
  koa.use(router.allowedMethods());

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

  // PostgreSQL: deny-list writes NOTIFY on commit and every instance LISTENs, so a revocation made on
  // any instance reaches this one's SSE subscribers at once; the periodic sync stays as the fallback
  // (and is all there is on SQLite, where --workers share one file)
  let listener: Listener | undefined;
  if (store.listen) {
    const onNotify = () => void services.denyList.sync().catch((err: unknown) => logger.warn({ err }, 'deny-list sync after NOTIFY failed'));
    listener = await store.listen(DENY_LIST_CHANNEL, onNotify, (err) => logger.warn({ err: err.message }, 'deny-list LISTEN connection lost; reconnecting'));
  }

  return {
    koa,
    services,
    tokenEndpoint,
    hub,
    callback() {
      const handle = koa.callback();
      const answerDocument = documentResponder({ documents, securityHeaders: securityHeaderList(https), log: requestLogger(logger), metrics: builtInMetrics });
      return (req, res) => {
        arrivals.stamp(req);
        return answerDocument(req, res) ? Promise.resolve() : handle(req, res);
      };
    },
    async tick() {
      await maintenance.keys();
      await maintenance.prune();
      await services.keyring.refresh();
      await services.denyList.sync();
    },
    async close() {
      for (const t of timers) clearInterval(t);
      await listener?.close();
      hub.close();
    },
  };
}

function createMaintenance(services: Services, config: Config, logger: Logger) {
  return {
    /** Scheduled rotation and retired-key expiry (keys/schedule.ts). */
    keys: keySchedule({ keys: services.keys, keyring: services.keyring, horizon: services.horizon, audit: services.audit, clock: services.clock, logger, policy: config.keys }),
    async prune() {
      const now = services.clock.now();
      const deny = await services.denyList.prune();
      const failures = await services.throttle.prune();
      const families = await new RefreshTokenRepository(services.db).pruneExpired(now);
      const dpopJtis = await services.dpop.prune(now);
      if (deny + failures + families + dpopJtis > 0) logger.debug({ deny, failures, families, dpopJtis }, 'pruned expired rows');
    },
  };
}

/** Applies the HTTP server limits of config.server (slow clients time out). */
export function applyServerLimits(server: Server, config: Config): void {
  server.headersTimeout = config.server.headersTimeoutMs;
  server.requestTimeout = config.server.requestTimeoutMs;
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
}
