// The scheduled key lifecycle a running server drives: rotation every keys.rotateEvery, and the
// removal of retired keys once every token they signed has expired. Several processes may run it
// at once (--workers, a fleet): one wins, as the rotation is a compare-and-set on the active key.
import type { Audit } from '../audit/audit.js';
import type { Clock } from '../clock.js';
import { type Config, parseDuration } from '../config.js';
import type { Logger } from '../logger.js';
import { isLockContention } from '../store/lockContention.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import type { KeyManager } from './keyManager.js';
import type { Keyring } from './keyring.js';

export interface KeyScheduleDeps {
  keys: KeyManager;
  keyring: Keyring;
  horizon: AccessHorizon;
  audit: Pick<Audit, 'record'>;
  clock: Clock;
  logger: Logger;
  policy: Pick<Config['keys'], 'algorithm' | 'rotateEvery' | 'jwksMaxAgeSeconds' | 'reloadIntervalMs'>;
}

/** The job to run periodically: scheduled rotation (when configured), then retired-key expiry. */
export function keySchedule(deps: KeyScheduleDeps): () => Promise<void> {
  const { keys, keyring, horizon, audit, clock, logger, policy } = deps;
  const rotateEvery = policy.rotateEvery ? (parseDuration(policy.rotateEvery) ?? 0) * 1000 : 0;
  // a next key signs only once every server has loaded it and every JWKS cache has had time to
  // expire (Cache-Control max-age), so resource servers know it before its first token
  const prePublication = policy.jwksMaxAgeSeconds * 1000 + policy.reloadIntervalMs;

  const rotateOnSchedule = async (now: number) => {
    const [active] = await keys.repo.byState('active');
    if (!active || (active.activated_at ?? active.created_at) + rotateEvery > now) return;
    const [next] = await keys.repo.byState('next');
    if (!next) {
      // someone removed or retired the next key: publish one now, promote it once caches have it
      const row = await keys.generate(policy.algorithm);
      logger.warn({ kid: row.kid }, 'no next key to rotate to; published a new one');
      await audit.record({ type: 'key.generated', detail: { kid: row.kid, alg: row.alg, scheduled: true } });
      return;
    }
    if (next.created_at + prePublication > now) return;
    let r;
    try {
      r = await keys.rotate(policy.algorithm, { ifActive: active.kid });
    } catch (err) {
      // another process holds the write lock for its own rotation: the next run sees its result
      if (!isLockContention(err)) throw err;
      logger.debug({ err }, 'scheduled rotation yielded to another process');
      return;
    }
    if (r) {
      logger.info({ retired: r.retired, activated: r.activated, next: r.next }, 'signing key rotated on schedule');
      await audit.record({ type: 'key.rotated', detail: { ...r, scheduled: true } });
    }
  };

  return async () => {
    const now = clock.now();
    if (rotateEvery > 0) await rotateOnSchedule(now);
    // a retired key stays published until every token it signed has expired
    const keep = (await horizon.windowSeconds()) * 1000;
    const removed = await keys.repo.removeRetiredBefore(now - keep, now);
    for (const kid of removed) await audit.record({ type: 'key.removed', detail: { kid, reason: 'expired' } });
    if (removed.length > 0 || rotateEvery > 0) await keyring.refresh();
  };
}
