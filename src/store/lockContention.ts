import { isBusy } from './sqlite/connection.js';

/**
 * Whether a write failed only because another process held the lock: SQLite busy or locked, or a
 * PostgreSQL serialization failure (40001), deadlock (40P01) or lock timeout (55P03). Such a write
 * may simply be tried again later.
 */
export function isLockContention(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  return isBusy(err) || code.startsWith('SQLITE_LOCKED') || code === '40001' || code === '40P01' || code === '55P03';
}
