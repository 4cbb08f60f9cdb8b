// Structured JSON logs (pino). Never a token, secret or password: the paths below are redacted
// wherever they appear, and request logs only carry method, path, status, duration, client_id and a
// failure's error code and detail (written by throw sites, which never put a credential in one).
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED_KEYS = ['password', 'client_secret', 'refresh_token', 'access_token', 'token', 'authorization', 'Authorization', 'secret'];

/** Log lines go to the file once this many bytes are pending, */
export const LOG_BATCH_BYTES = 4096;
/** or this long after they were logged, whichever comes first. */
export const LOG_FLUSH_MS = 250;

/** What TurnBatcher writes to: pino's SonicBoom (its flushSync when the process exits). */
export interface LineSink {
  write(chunk: string): unknown;
  flushSync?(): void;
}

/**
 * Hands the lines logged in one turn of the event loop to `sink` as one string. SonicBoom measures
 * its pending buffer with Buffer.byteLength on every write, which flattens the growing string: a
 * line per request cost about 2 µs of CPU that way (a tenth of a JWKS request), a turn's worth of
 * lines once costs that much for all of them. A process that exits (process.exit after a drain,
 * an uncaught error) first hands over what is pending and flushes the sink synchronously.
 */
export class TurnBatcher implements DestinationStream {
  private pending: string[] = [];
  private readonly onExit = () => {
    this.flush();
    try {
      this.sink.flushSync?.();
    } catch {
      // a sink that is not open yet, or already closed, has nothing to flush
    }
  };

  constructor(private readonly sink: LineSink) {
    process.once('exit', this.onExit);
  }

  write(line: string): void {
    if (this.pending.push(line) === 1) setImmediate(this.flush);
  }

  readonly flush = (): void => {
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.sink.write(text);
  };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]);
  // stdout by default, written asynchronously and in batches: a write per request line cost a
  // hand-off to libuv's thread pool and back. Lines wait until LOG_BATCH_BYTES are pending or
  // LOG_FLUSH_MS have passed; what is pending is flushed when the process exits (SIGKILL loses at
  // most that much).
  return pino({ level, base: undefined, redact: { paths, censor: '[redacted]' } }, destination ?? new TurnBatcher(pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS })));
}
