// argon2id hashing behind a bounded queue: at most `maxConcurrent` hashes run at once and at most
// `maxQueued` wait; past that the caller gets HasherOverloaded at once (→ 503), so a flood of
// password grants cannot exhaust memory or starve refresh and introspection traffic.
import argon2 from 'argon2';

export interface PasswordPolicy {
  memoryCostKiB: number;
  timeCost: number;
  parallelism: number;
  maxConcurrentHashes: number;
  maxQueuedHashes: number;
}

export class HasherOverloaded extends Error {
  override name = 'HasherOverloaded';
}

export class PasswordHasher {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private dummy: Promise<string> | undefined;
  /** Total time requests waited in the queue, ms (for metrics). */
  waitedMs = 0;

  constructor(private readonly policy: PasswordPolicy) {}

  get queueDepth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.policy.maxConcurrentHashes) {
      if (this.waiting.length >= this.policy.maxQueuedHashes) throw new HasherOverloaded('the password-hashing queue is full');
      const queuedAt = performance.now();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.waitedMs += performance.now() - queuedAt;
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  hash(password: string): Promise<string> {
    return this.slot(() =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: this.policy.memoryCostKiB,
        timeCost: this.policy.timeCost,
        parallelism: this.policy.parallelism,
      }),
    );
  }

  /** False for a wrong password and for a hash argon2 can't read. */
  verify(hash: string, password: string): Promise<boolean> {
    return this.slot(() => argon2.verify(hash, password).catch(() => false));
  }

  /**
   * The same work as a real verification, against a dummy hash: an unknown username takes as long
   * as a wrong password, so timing does not reveal which accounts exist.
   */
  async verifyDummy(password: string): Promise<false> {
    this.dummy ??= argon2.hash('tollgate-dummy-password', {
      type: argon2.argon2id,
      memoryCost: this.policy.memoryCostKiB,
      timeCost: this.policy.timeCost,
      parallelism: this.policy.parallelism,
    });
    await this.verify(await this.dummy, password);
    return false;
  }

  /** Checks that a password is acceptable to store. */
  static validate(password: string): string | undefined {
    if (password.length < 8) return 'a password needs at least 8 characters';
    if (password.length > 1024) return 'a password may have at most 1024 characters';
    return undefined;
  }
}
