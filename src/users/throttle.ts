// Failed password grants counted per username and per client IP in a sliding window, in the store
// (a restart does not reset them). Past a limit the grant is refused before argon2 runs. Unknown
// usernames are counted like known ones, so the limiter does not reveal which accounts exist.
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Database } from '../store/schema.js';

export interface ThrottlePolicy {
  windowSeconds: number;
  maxFailuresPerUsername: number;
  maxFailuresPerIp: number;
}

const userKey = (username: string) => `user:${username.toLowerCase()}`;
const ipKey = (ip: string) => `ip:${ip}`;

export class LoginThrottle {
  constructor(private readonly deps: { db: Kysely<Database>; clock: Clock; policy: ThrottlePolicy }) {}

  /** Seconds until the next attempt is allowed, or 0 when it is allowed now. */
  async retryAfter(username: string, ip: string | undefined): Promise<number> {
    const { windowSeconds, maxFailuresPerUsername, maxFailuresPerIp } = this.deps.policy;
    const now = this.deps.clock.now();
    const since = now - windowSeconds * 1000;
    const checks: Array<[string, number]> = [[userKey(username), maxFailuresPerUsername]];
    if (ip) checks.push([ipKey(ip), maxFailuresPerIp]);
    let wait = 0;
    for (const [key, limit] of checks) {
      const rows = await this.deps.db.selectFrom('login_failures').select('at').where('key', '=', key).where('at', '>', since).orderBy('at', 'desc').limit(limit).execute();
      if (rows.length >= limit) {
        // the window slides: the attempt is allowed once the limit-th most recent failure leaves it
        const oldest = Number(rows[rows.length - 1]?.at ?? now);
        wait = Math.max(wait, Math.ceil((oldest + windowSeconds * 1000 - now) / 1000));
      }
    }
    return Math.max(0, wait);
  }

  async recordFailure(username: string, ip: string | undefined): Promise<void> {
    const at = this.deps.clock.now();
    const rows = [{ key: userKey(username), at }];
    if (ip) rows.push({ key: ipKey(ip), at });
    await this.deps.db.insertInto('login_failures').values(rows).execute();
  }

  /** A successful sign-in clears the username's counter (not the IP's). */
  async clear(username: string): Promise<void> {
    await this.deps.db.deleteFrom('login_failures').where('key', '=', userKey(username)).execute();
  }

  async prune(): Promise<number> {
    const cutoff = this.deps.clock.now() - this.deps.policy.windowSeconds * 1000;
    const r = await this.deps.db.deleteFrom('login_failures').where('at', '<=', cutoff).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
