// WAL checkpoints on a thread of their own. With synchronous=NORMAL a commit only appends to the
// WAL; the fsyncs happen when the WAL is copied back into the database (a checkpoint). SQLite runs
// that inside the commit that crosses wal_autocheckpoint, on the thread that committed: the event
// loop stopped for the fsyncs (milliseconds on a virtual disk) every few hundred writes, and the
// amortized cost was half of every write transaction (revocation: 35 µs of a 43 µs transaction).
// Here a worker thread with its own connection checkpoints (PASSIVE: never waits for, never blocks
// readers or writers) twenty times a second; the serving connection's own autocheckpoint is only
// a safety net far above what the thread lets the WAL reach.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Pages the serving connection lets the WAL reach before checkpointing itself (the thread is gone or far behind). */
export const SAFETY_NET_PAGES = 20_000;
export const DEFAULT_INTERVAL_MS = 50;

// CommonJS in an eval'd worker: no file to find beside the compiled module, in dist/ or under vitest
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
db.pragma('synchronous = NORMAL'); // the checkpointing connection's setting decides the fsyncs
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => {
  try {
    const [row] = checkpoint.all();
    if (workerData.report) parentPort.postMessage(row);
  } catch {
    // busy (another process's checkpointer), or the file is going away: the next tick tries again
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export interface CheckpointerOptions {
  intervalMs?: number;
  /** Tests: called with each checkpoint's result row ({busy, log, checkpointed}). */
  onCheckpoint?: (row: { busy: number; log: number; checkpointed: number }) => void;
}

export function startCheckpointer(file: string, options: CheckpointerOptions = {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file, driver, intervalMs: options.intervalMs ?? DEFAULT_INTERVAL_MS, report: Boolean(options.onCheckpoint) },
  });
  worker.unref();
  if (options.onCheckpoint) worker.on('message', options.onCheckpoint);
  // a failed thread leaves checkpointing to the serving connection's safety net
  worker.on('error', () => undefined);
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        // referenced again: an unreferenced thread would let the process end before it has stopped
        worker.ref();
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
        // a thread stuck in a checkpoint is not waited for past this
        setTimeout(() => void worker.terminate(), 2000).unref();
      });
      return stopped;
    },
  };
}
