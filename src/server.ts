// Runs Tollgate as a process: config → store → app → HTTP server; SIGTERM/SIGINT drain.
import cluster from 'node:cluster';
import http from 'node:http';
import { applyServerLimits, createApp } from './app.js';
import type { Config } from './config.js';
import { createLogger } from './logger.js';
import { openStore } from './store/database.js';

export interface ServeOptions {
  config: Config;
  workers?: number;
}

export async function serve({ config, workers = config.server.workers }: ServeOptions): Promise<void> {
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers);
  const logger = createLogger(config.log.level);
  const store = openStore(config.database.url, config.database);
  let app;
  try {
    app = await createApp({ config, store, logger });
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  const server = http.createServer(app.callback());
  applyServerLimits(server, config);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  logger.info({ issuer: config.issuer, host: config.server.host, port, database: store.location, pid: process.pid }, 'tollgate listening');

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
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

async function runPrimary(config: Config, workers: number): Promise<void> {
  const logger = createLogger(config.log.level);
  // the primary migrates and creates the first keys once, so workers start on a ready store
  const store = openStore(config.database.url, config.database);
  const app = await createApp({ config, store, logger, jobs: false });
  await app.close();
  await store.close();
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  logger.info({ workers }, 'tollgate primary started');
}
