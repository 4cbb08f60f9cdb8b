// The verifier's cache of tokens whose signature and static claims (typ, iss, aud, shapes) were
// checked: a hit skips the signature, the costly part, and nothing else. Every check that can
// change after the token was verified still runs on each call (exp/nbf/iat against the clock, the
// deny list, DPoP, the status list), and an entry counts only while the key that signed it is still
// in the JWK Set, unchanged. Bounded: least recently used entries go first.
import type { AccessTokenClaims } from './verifier.js';

export interface TokenCacheOptions {
  /** Tokens kept at most (default 10,000: about 15 MB with Tollgate-sized tokens). */
  maxEntries?: number;
}

export interface CachedToken {
  /** Frozen: the same object is returned on every hit, so no caller can change what the next sees. */
  claims: AccessTokenClaims;
  kid: string;
  /** The JWK Set's fingerprint of the key under kid when the signature was checked. */
  key: string;
}

export const DEFAULT_CACHE_ENTRIES = 10_000;

export class TokenCache {
  readonly maxEntries: number;
  // a Map iterates in insertion order: re-inserting on a hit makes the first key the least recently used
  private readonly entries = new Map<string, CachedToken>();

  constructor(options: TokenCacheOptions) {
    this.maxEntries = options.maxEntries ?? DEFAULT_CACHE_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new TypeError('cache.maxEntries must be a positive integer');
  }

  get size(): number {
    return this.entries.size;
  }

  get(token: string): CachedToken | undefined {
    const entry = this.entries.get(token);
    if (entry !== undefined) {
      this.entries.delete(token);
      this.entries.set(token, entry);
    }
    return entry;
  }

  set(token: string, entry: CachedToken): void {
    this.entries.delete(token);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, entry);
  }

  delete(token: string): void {
    this.entries.delete(token);
  }
}

/** Freezes claims read from JSON (objects and arrays only), so a cached copy cannot be altered. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
