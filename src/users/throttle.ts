// Failed password grants counted in a sliding window, in the store (a restart does not reset them),
// per (username, client address), per username and per address; IPv6 addresses count per /64
// prefix, the block one subscriber usually holds. Past a limit the grant is refused before argon2
// runs. Unknown usernames are counted like known ones, so the limiter does not reveal which
// accounts exist.
//
// The per-username limit stops guessing spread over many addresses, but on its own it would let
// anyone lock the owner out with a few wrong passwords (issue 15). So once a username is past it,
// addresses the user signed in from successfully in the last 30 days may still try, each within
// its per-(username, address) limit, and only new addresses are refused. In one window (short of
// a success below the limit, which starts the count again), guesses at one username reach argon2
// at most maxFailuresPerUsername times from addresses the user never signed in from, plus
// maxFailuresPerUsernameAndIp times from each address they did.
import net from 'node:net';
import type { UsernamePseudonyms } from '../audit/pseudonym.js';
import type { Clock } from '../clock.js';
import { KnownAddressRepository } from '../store/knownAddresses.js';
import { LoginFailureRepository } from '../store/loginFailures.js';
import { type Db, inTransaction } from '../store/database.js';

export interface ThrottlePolicy {
  windowSeconds: number;
  maxFailuresPerUsername: number;
  maxFailuresPerIp: number;
  maxFailuresPerUsernameAndIp: number;
}

/** Which limit refused an attempt (the audit trail's `sign_in.throttled` detail). */
export type ThrottleLimit = 'per_username_and_ip' | 'per_ip' | 'per_username';

/** How long a successful sign-in keeps its address known. */
export const KNOWN_ADDRESS_DAYS = 30;
const KNOWN_ADDRESS_MS = KNOWN_ADDRESS_DAYS * 86_400_000;

/** One password attempt, counted as a failure from the moment it begins. */
export interface LoginAttempt {
  /** Seconds until an attempt is allowed; above 0 this one is refused, and it is not counted. */
  readonly retryAfter: number;
  /** The limit that refused it, when it was refused. */
  readonly limit: ThrottleLimit | undefined;
  /**
   * The password was right: takes this attempt off every counter, clears the (username, address)
   * counter, clears the username's while it is below its limit (past it, clearing would give a
   * stranger a fresh allowance on every sign-in of the owner), and remembers the address.
   */
  succeeded(userId: string): Promise<void>;
  /** The attempt proved nothing (the server was too busy to check the password): not counted. */
  withdraw(): Promise<void>;
}

interface Counter {
  limit: ThrottleLimit;
  key: string;
  max: number;
}

/**
 * The unit an address is counted and remembered by: an IPv4 address as it is (also when written
 * IPv4-mapped, `::ffff:192.0.2.1`), an IPv6 address as its /64 prefix (`2001:db8:0:1::/64`); an
 * IPv6 host picks any address in its /64 at will (RFC 8981), so counting full addresses would give
 * it 2^64 fresh counters. Anything that is no IP address counts as it is; no address at all is
 * undefined (then only the username counts).
 */
export function addressBucket(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  const bare = ip.replace(/%.*$/, ''); // a zone id (fe80::1%eth0) names the local interface only
  if (net.isIPv4(bare)) return bare;
  if (!net.isIPv6(bare)) return ip;
  const g = ipv6Groups(bare);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return [g[6] ?? 0, g[7] ?? 0].flatMap((x) => [x >> 8, x & 0xff]).join('.');
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an address net.isIPv6 accepted. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((x) => Number.parseInt(x, 16));
}

export class LoginThrottle {
  private readonly failures: LoginFailureRepository;
  private readonly known: KnownAddressRepository;

  constructor(private readonly deps: { db: Db; clock: Clock; policy: ThrottlePolicy; pseudonyms: UsernamePseudonyms }) {
    this.failures = new LoginFailureRepository(deps.db);
    this.known = new KnownAddressRepository(deps.db);
  }

  /** The counters an attempt counts against, most specific first (on equal waits, the audit trail names the narrower limit). */
  private counters(username: string, address: string | undefined): { pair?: Counter; user: Counter; all: Counter[] } {
    const { policy, pseudonyms } = this.deps;
    // every name hashed, known or not: what was typed (maybe a password) is never stored
    const name = pseudonyms.digest(username.toLowerCase());
    const user: Counter = { limit: 'per_username', key: `user:${name}`, max: policy.maxFailuresPerUsername };
    if (address === undefined) return { user, all: [user] };
    const pair: Counter = { limit: 'per_username_and_ip', key: `user_ip:${name}@${address}`, max: policy.maxFailuresPerUsernameAndIp };
    const ip: Counter = { limit: 'per_ip', key: `ip:${address}`, max: policy.maxFailuresPerIp };
    return { pair, user, all: [pair, ip, user] };
  }

  /**
   * Counts the attempt first and checks it second: of many parallel guesses, each sees every one
   * counted before it, so no more than the limit get past argon2 however many arrive at once. The
   * count and the check are one transaction holding its counters' lock (LoginFailureRepository
   * .lockCounters): PostgreSQL hands out row ids before the rows commit, so without it a guess
   * could miss an earlier guess's row that was not committed yet, and both pass.
   */
  async begin(username: string, ip: string | undefined): Promise<LoginAttempt> {
    const now = this.deps.clock.now();
    const since = now - this.deps.policy.windowSeconds * 1000;
    const address = addressBucket(ip);
    const { pair, user, all } = this.counters(username, address);
    const { ids, retryAfter, limit } = await inTransaction(this.deps.db, async (tx) => {
      const failures = new LoginFailureRepository(tx);
      await failures.lockCounters(all.map((c) => c.key));
      const ids = await failures.add(all.map((c) => c.key), now);
      const before = Math.min(...ids);
      let retryAfter = 0;
      let limit: ThrottleLimit | undefined;
      for (const counter of all) {
        let wait = await this.wait(failures, counter, since, before, now);
        // past the username's limit, an address the user signed in from may still try (within its
        // per-(username, address) limit, checked above); new addresses may not
        if (wait > 0 && counter === user && address !== undefined && (await new KnownAddressRepository(tx).isKnown(username, address, now - KNOWN_ADDRESS_MS))) wait = 0;
        if (wait > retryAfter) [retryAfter, limit] = [wait, counter.limit];
      }
      if (retryAfter > 0) await failures.remove(ids);
      return { ids, retryAfter, limit };
    });

    return {
      retryAfter,
      limit,
      succeeded: async (userId) => {
        await this.failures.remove(ids);
        if (pair) await this.failures.clear(pair.key);
        await this.clearBelowLimit(user, since);
        if (address !== undefined) await this.known.remember(userId, address, now);
      },
      withdraw: () => this.failures.remove(ids),
    };
  }

  /** Seconds until `counter` allows an attempt, counting the failures recorded before row `before`. */
  private async wait(failures: LoginFailureRepository, counter: Counter, since: number, before: number, now: number): Promise<number> {
    const recent = await failures.recent(counter.key, since, before, counter.max);
    if (recent.length < counter.max) return 0;
    // the window slides: the attempt is allowed once the max-th most recent failure leaves it
    const oldest = recent[recent.length - 1] ?? now;
    return Math.max(0, Math.ceil((oldest + this.deps.policy.windowSeconds * 1000 - now) / 1000));
  }

  /**
   * Clears a username's failures while they are below its limit. Only the rows counted here: a
   * guess that arrives in between stays counted.
   */
  private async clearBelowLimit(counter: Counter, since: number): Promise<void> {
    const { count, maxId } = await this.failures.count(counter.key, since);
    if (count > 0 && count < counter.max) await this.failures.clear(counter.key, maxId);
  }

  /** Deletes failures that left the window and addresses unused for 30 days; returns the rows deleted. */
  async prune(): Promise<number> {
    const now = this.deps.clock.now();
    const failures = await this.failures.pruneUntil(now - this.deps.policy.windowSeconds * 1000);
    const known = await this.known.pruneUntil(now - KNOWN_ADDRESS_MS);
    return failures + known;
  }
}
