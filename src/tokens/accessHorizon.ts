// How long a deny-list entry that covers "every access token issued so far" (a user's `sub`, a
// client, a key) must last: until the last such token has expired. Today's settings say how long
// a token issued now lives; tokens issued before a lifetime was shortened, a client removed or the
// default lowered may live longer, and `horizons.access` remembers the latest of those `exp`s. So
// an entry outlives every token it can deny whatever the configuration has become (issue 14).
import { type Clock, seconds } from '../clock.js';
import { ClientRepository } from '../store/clients.js';
import { HorizonRepository } from '../store/horizons.js';
import type { Db } from '../store/database.js';

export interface AccessHorizonDeps {
  db: Db;
  clock: Clock;
  /** The configured default access-token lifetime, seconds. */
  defaultTtlSeconds: number;
  clockToleranceSeconds: number;
}

export class AccessHorizon {
  constructor(private readonly deps: AccessHorizonDeps) {}

  /** Seconds of leeway verifiers allow past `exp`: entries last this much longer. */
  get toleranceSeconds(): number {
    return this.deps.clockToleranceSeconds;
  }

  /**
   * Epoch seconds by which every access token issued up to now has expired (plus the clock
   * tolerance a verifier allows): when an entry denying all of them stops mattering.
   */
  async until(db: Db = this.deps.db): Promise<number> {
    const now = this.deps.clock.now();
    const longest = Math.max(this.deps.defaultTtlSeconds, await new ClientRepository(db).maxAccessTokenTtl());
    const recorded = (await new HorizonRepository(db).get('access')) ?? 0;
    return Math.ceil(Math.max(now + longest * 1000, recorded) / 1000) + this.deps.clockToleranceSeconds;
  }

  /** Seconds from now until `until()`. */
  async windowSeconds(db: Db = this.deps.db): Promise<number> {
    return (await this.until(db)) - seconds(this.deps.clock.now());
  }

  /** Tokens issued until now may have lived `ttlSeconds`: remember when the last of them expires. */
  async issuedWith(ttlSeconds: number, db: Db = this.deps.db): Promise<void> {
    await new HorizonRepository(db).set('access', this.deps.clock.now() + ttlSeconds * 1000, true);
  }

  /** At start: a default lifetime lowered since the last start leaves tokens of the old one behind. */
  async noteDefault(db: Db = this.deps.db): Promise<void> {
    const repo = new HorizonRepository(db);
    const previous = await repo.get('default_ttl');
    if (previous === this.deps.defaultTtlSeconds) return;
    if (previous !== undefined && previous > this.deps.defaultTtlSeconds) await this.issuedWith(previous, db);
    await repo.set('default_ttl', this.deps.defaultTtlSeconds, false);
  }
}
