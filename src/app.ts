// createApp({ config, store, clock, logger }): a complete Tollgate over one store, with no globals,
// so tests run many isolated servers in one process. It only composes: the domain (services.ts),
// the protocol over it (protocol.ts), the HTTP app (http/app.ts) and the background jobs (jobs.ts).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type Koa from 'koa';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import { createHttpApp } from './http/app.js';
import { ArrivalStamper } from './http/arrival.js';
import { Metrics, type MetricsRenderer } from './http/metrics.js';
import { publicDocuments } from './http/routes.js';
import { SseHub } from './http/sse.js';
import { startJobs } from './jobs.js';
import { type Logger, createLogger } from './logger.js';
import type { ProtocolEvents } from './oauth/events.js';
import type { TokenEndpoint } from './oauth/tokenEndpoint.js';
import { createProtocol } from './protocol.js';
import { type Domain, createServices } from './services.js';
import { type Store, isReachable, migrate } from './store/database.js';

export interface AppOptions {
  config: Config;
  store: Store;
  clock?: Clock;
  logger?: Logger;
  kek?: Buffer;
  /** Run background jobs (key reload, deny-list sync, pruning, scheduled rotation). Default true. */
  jobs?: boolean;
  events?: ProtocolEvents;
  metrics?: MetricsRenderer;
}

export interface App {
  koa: Koa;
  services: Domain;
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
  const builtIn = options.metrics ? undefined : new Metrics();
  const events = options.events ?? builtIn?.events;
  const domain = createServices({ config, store, clock, logger, ...(options.kek ? { kek: options.kek } : {}), ...(events ? { events } : {}) });
  if (await domain.keys.ensureInitialKeys(config.keys.algorithm)) {
    for (const key of await domain.keys.repo.all()) await domain.audit.record({ type: 'key.generated', detail: { kid: key.kid, alg: key.alg, state: key.state, initial: true } });
  }
  await domain.keyring.refresh(); // a wrong KEK fails here, before the server listens
  await domain.horizon.noteDefault();
  await domain.denyList.sync();
  await domain.statusLists.init();

  const protocol = createProtocol(domain);
  const hub = new SseHub({
    heartbeatMs: config.denyList.heartbeatSeconds * 1000,
    maxStreamsPerClient: config.denyList.maxStreamsPerClient,
    maxStreams: config.denyList.maxStreams,
    secretHashes: (ids) => domain.clientAuth.secretHashes(ids),
    logger,
  });
  // removed or rotated here: its streams end at once (the hub's re-check catches the CLI's changes)
  domain.clients.onCredentialsChanged((clientId) => hub.endClient(clientId));
  builtIn?.observe(domain, hub);
  const http = createHttpApp({
    ...protocol,
    logger,
    https: config.issuer.startsWith('https:'),
    trustProxy: config.server.trustProxy,
    arrivals: new ArrivalStamper(domain.spends, clock),
    documents: publicDocuments({ issuer: config.issuer, jwksMaxAgeSeconds: config.keys.jwksMaxAgeSeconds, keyring: domain.keyring, dpopAlgorithms: domain.dpop.algorithms }, protocol.tokenEndpoint.grantTypes),
    metrics: { builtIn, render: options.metrics },
    clients: domain.clientAuth,
    denyList: domain.denyList,
    statusLists: domain.statusLists,
    dpop: domain.dpop,
    issuer: config.issuer,
    keyring: domain.keyring,
    hub,
    limits: config.server,
    storeReachable: () => isReachable(store.db),
  });
  const jobs = await startJobs(domain, store, logger, { periodic: options.jobs !== false });

  return {
    koa: http.koa,
    services: domain,
    tokenEndpoint: protocol.tokenEndpoint,
    hub,
    callback: () => http.callback(),
    tick: () => jobs.tick(),
    async close() {
      await jobs.stop();
      hub.close();
    },
  };
}

/** Applies the HTTP server limits of config.server (slow clients time out). */
export function applyServerLimits(server: Server, config: Config): void {
  server.headersTimeout = config.server.headersTimeoutMs;
  server.requestTimeout = config.server.requestTimeoutMs;
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
}
