// Structured JSON logs (pino). Never a token, secret or password: the paths below are redacted
// wherever they appear, and request logs only carry method, path, status, duration, client_id and a
// failure's error code and detail (written by throw sites, which never put a credential in one).
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED_KEYS = ['password', 'client_secret', 'refresh_token', 'access_token', 'token', 'authorization', 'Authorization', 'secret'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]);
  // stdout by default, written asynchronously: a write per request line cost a syscall on the hot
  // path; pino flushes what is pending when the process exits
  return pino({ level, base: undefined, redact: { paths, censor: '[redacted]' } }, destination ?? pino.destination({ dest: 1, sync: false }));
}
