// Runs Tollgate as a process: config → store → app → HTTP server; SIGTERM/SIGINT drain.
import cluster from 'node:cluster';
import http from 'node:http';
import { applyServerLimits, createApp } from './app.js';
import type { Config } from './config.js';
import { createLogger } from './logger.js';
import { mallocEnv } from './mallocEnv.js';
import { openStore } from './store/database.js';

export interface ServeOptions {
  config: Config;
  workers?: number;
}

export async function serve({ config, workers = config.server.workers }: ServeOptions): Promise<void> {
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers);
  // every line says which process wrote it: several workers share one log
  const logger = createLogger(config.log.level).child({ pid: process.pid });
  // one warning about a store readable by others: from the primary of --workers N, or the only process
  const store = openStore(config.database.url, { ...config.database, backgroundCheckpoints: true, logger: cluster.isWorker ? undefined : logger });
  let app;
  try {
    app = await createApp({ config, store, logger });
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  // Node checks headersTimeout/requestTimeout only this often (default 30 s): a slow client would
  // otherwise hold its connection up to 30 s past the limit
  const server = http.createServer({ connectionsCheckingInterval: 1000 }, app.callback());
  applyServerLimits(server, config);
  // every connection costs a file descriptor and memory, an SSE stream holds one for hours: past
  // this many the server closes new sockets at once (Node's 'drop'), rather than running out of
  // descriptors for the store and everything else. Above denyList.maxStreams (config.ts checks).
  server.maxConnections = config.server.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  logger.info({ issuer: config.issuer, host: config.server.host, port, database: store.location }, 'tollgate listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    const deadline = setTimeout(() => {
      logger.warn('drain deadline passed; closing remaining connections');
      server.closeAllConnections();
    }, config.server.shutdownTimeoutMs);
    deadline.unref();
    await app.close(); // SSE streams end with a retry hint
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearTimeout(deadline);
    await store.close().catch(() => undefined);
    logger.info('stopped');
    process.exit(0);
  };
  // `on`, not `once`: a second signal (the primary relays SIGTERM to workers that a process-group
  // kill already reached) must not fall back to the default action and cut the drain short
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

async function runPrimary(config: Config, workers: number): Promise<void> {
  const logger = createLogger(config.log.level);
  // the primary migrates and creates the first keys once, so workers start on a ready store
  const store = openStore(config.database.url, { ...config.database, logger });
  const app = await createApp({ config, store, logger, jobs: false });
  await app.close();
  await store.close();
  let stopping = false;
  let exitCode = 0;
  // counted here: cluster.workers may still list a worker when its 'exit' event fires
  let live = 0;
  const listening = new Set<number>();
  const fork = () => {
    live++;
    // the same malloc settings as `npm start` (see mallocEnv.ts)
    cluster.fork(mallocEnv());
  };
  for (let i = 0; i < workers; i++) fork();
  cluster.on('listening', (worker) => listening.add(worker.id));
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    if (live === 0) process.exit(code);
    // workers drain within shutdownTimeoutMs; one that hangs past it is killed
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(code);
    }, config.server.shutdownTimeoutMs + 1000).unref();
  };
  cluster.on('exit', (worker, code, signal) => {
    live--;
    if (stopping) {
      if (live === 0) process.exit(exitCode);
      return;
    }
    if (!listening.has(worker.id)) {
      // it never started (port taken, store unreachable): forking again would only loop
      logger.error({ pid: worker.process.pid, code, signal }, 'worker failed to start; stopping');
      stop(1);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
    fork();
  });
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  logger.info({ workers, pid: process.pid }, 'tollgate primary started');
}
