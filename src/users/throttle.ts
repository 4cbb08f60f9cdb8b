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

/** One password attempt, counted as a failure from the moment it begins. */
export interface LoginAttempt {
  /** Seconds until an attempt is allowed; above 0 this one is refused, and it is not counted. */
  readonly retryAfter: number;
  /** The password was right: clears the username's counter and takes this attempt off the IP's. */
  succeeded(): Promise<void>;
  /** The attempt proved nothing (the server was too busy to check the password): not counted. */
  withdraw(): Promise<void>;
}

const userKey = (username: string) => `user:${username.toLowerCase()}`;
const ipKey = (ip: string) => `ip:${ip}`;

export class LoginThrottle {
  constructor(private readonly deps: { db: Kysely<Database>; clock: Clock; policy: ThrottlePolicy }) {}

  private limits(username: string, ip: string | undefined): Array<[string, number]> {
    const checks: Array<[string, number]> = [[userKey(username), this.deps.policy.maxFailuresPerUsername]];
    if (ip) checks.push([ipKey(ip), this.deps.policy.maxFailuresPerIp]);
    return checks;
  }

  /**
   * Counts the attempt first and checks it second: of many parallel guesses, each sees every one
   * counted before it, so no more than the limit get past argon2 however many arrive at once.
   */
  async begin(username: string, ip: string | undefined): Promise<LoginAttempt> {
    const at = this.deps.clock.now();
    const keys = this.limits(username, ip);
    const inserted = await this.deps.db
      .insertInto('login_failures')
      .values(keys.map(([key]) => ({ key, at })))
      .returning('id')
      .execute();
    const ids = inserted.map((r) => Number(r.id));
    const remove = async (which: number[]) => {
      if (which.length > 0) await this.deps.db.deleteFrom('login_failures').where('id', 'in', which).execute();
    };
    const wait = await this.wait(keys, Math.min(...ids));
    if (wait > 0) await remove(ids);
    return {
      retryAfter: wait,
      succeeded: async () => {
        await this.clear(username);
        await remove(ids);
      },
      withdraw: () => remove(ids),
    };
  }

  /** Seconds until an attempt is allowed, counting the failures recorded before row `before`. */
  private async wait(checks: Array<[string, number]>, before: number): Promise<number> {
    const { windowSeconds } = this.deps.policy;
    const now = this.deps.clock.now();
    const since = now - windowSeconds * 1000;
    let wait = 0;
    for (const [key, limit] of checks) {
      const rows = await this.deps.db.selectFrom('login_failures').select('at').where('key', '=', key).where('at', '>', since).where('id', '<', before).orderBy('at', 'desc').limit(limit).execute();
      if (rows.length >= limit) {
        // the window slides: the attempt is allowed once the limit-th most recent failure leaves it
        const oldest = Number(rows[rows.length - 1]?.at ?? now);
        wait = Math.max(wait, Math.ceil((oldest + windowSeconds * 1000 - now) / 1000));
      }
    }
    return Math.max(0, wait);
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
