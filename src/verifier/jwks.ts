// The issuer's JWK Set, cached no longer than the issuer allows. jose's remote set keeps a set for a
// fixed 600 s whatever the server says, so a key the issuer unpublished (a leaked key, removed to
// revoke what it signed) kept verifying for up to ten minutes. Here the freshness lifetime is the
// response's own (RFC 9111 §4.2: Cache-Control max-age, less Age), a stale set is revalidated
// (ETag, §4.3) before any key of it is used again, and a key named by a `kid` deny-list entry is
// dropped at once. Key selection is jose's createLocalJWKSet.
import { type JSONWebKeySet, type JWTVerifyGetKey, type LocalJWKSet, createLocalJWKSet, errors } from 'jose';

export interface JwksCacheOptions {
  uri: URL;
  /** Milliseconds since the epoch; injectable so tests control the cache's age. */
  now: () => number;
  /** A key whose kid this says is denied is left out of the set (the deny list's `kid` entries). */
  isDenied?: (kid: string) => boolean;
  /** One fetch's time limit (default 5 s, as jose). */
  timeoutMs?: number;
  /** Least time between two refetches for an unknown kid (default 30 s, as jose). */
  cooldownMs?: number;
}

/** Without Cache-Control max-age, a set is used this long before it is fetched again. */
export const DEFAULT_MAX_AGE_SECONDS = 60;
/** The longest a set is ever used, whatever the server allows: jose's old fixed lifetime. */
export const MAX_AGE_CAP_SECONDS = 600;
const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_COOLDOWN_MS = 30_000;

/**
 * Seconds a response may be used (RFC 9111 §4.2.1, §4.2.3): `no-store`/`no-cache` → 0, else
 * `max-age` less `Age`, capped; none → the default. A shared cache's `s-maxage` does not apply to us.
 */
export function freshnessSeconds(cacheControl: string | null, age: string | null): number {
  let maxAge: number | undefined;
  for (const directive of (cacheControl ?? '').toLowerCase().split(',')) {
    const [name = '', value] = directive.trim().split('=', 2);
    if (name === 'no-store' || name === 'no-cache') return 0;
    if (name === 'max-age') {
      const seconds = /^"?(\d{1,10})"?$/.exec(value?.trim() ?? '')?.[1];
      // a malformed max-age makes the response stale, and of two the shorter wins (§4.2.1)
      maxAge = Math.min(maxAge ?? Number.POSITIVE_INFINITY, seconds === undefined ? 0 : Number(seconds));
    }
  }
  const lifetime = Math.min(maxAge ?? DEFAULT_MAX_AGE_SECONDS, MAX_AGE_CAP_SECONDS);
  const current = /^\d{1,10}$/.test(age?.trim() ?? '') ? Number(age) : 0;
  return Math.max(0, lifetime - current);
}

export class JwksCache {
  private local: LocalJWKSet | undefined;
  private published: JSONWebKeySet | undefined;
  /** kid -> the key material in use under it (undefined when two keys share the kid): see keyFingerprint. */
  private fingerprints = new Map<string, string | undefined>();
  /** When the set in use was last fetched or revalidated (the request's start: conservative). */
  private checkedAt = Number.NEGATIVE_INFINITY;
  private freshUntil = Number.NEGATIVE_INFINITY;
  private etag: string | undefined;
  private cacheControl: string | null = null;
  private pending: Promise<void> | undefined;
  private readonly shutdown = new AbortController();
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;

  constructor(private readonly options: JwksCacheOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  }

  /** A set is loaded and still within its freshness lifetime. */
  get fresh(): boolean {
    return this.local !== undefined && this.options.now() < this.freshUntil;
  }

  /** The key for a JWS header: fetches a stale set first, and once (with a cooldown) for an unknown kid. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.fresh) await this.reload();
    try {
      return await this.select(header, token);
    } catch (e) {
      // a kid published since the last fetch (a rotation): fetch again, but not for every forged kid
      if (e instanceof errors.JWKSNoMatchingKey && this.options.now() - this.checkedAt >= this.cooldownMs) {
        await this.reload();
        return this.select(header, token);
      }
      throw e;
    }
  };

  /** Fetches the set now (one request at a time: concurrent callers share it). */
  reload(): Promise<void> {
    if (!this.pending) {
      const pending = this.fetch().finally(() => {
        if (this.pending === pending) this.pending = undefined;
      });
      this.pending = pending;
    }
    return this.pending;
  }

  /**
   * What the set in use holds under this kid (its public key members), or undefined when it holds
   * no single key with it: the verifier's token cache accepts a cached token only while the key
   * that signed it is still published, unchanged and fresh.
   */
  keyFingerprint(kid: string): string | undefined {
    return this.fresh ? this.fingerprints.get(kid) : undefined;
  }

  /** Drops a key at once (a `kid` deny-list entry); later fetches leave it out while the entry lasts. */
  drop(kid: string): void {
    if (this.published?.keys.some((k) => k.kid === kid)) this.use(this.published);
  }

  close(): void {
    this.shutdown.abort();
  }

  private select(...args: Parameters<JWTVerifyGetKey>): ReturnType<LocalJWKSet> {
    if (!this.local) throw new errors.JWKSNoMatchingKey();
    return this.local(...args);
  }

  private use(jwks: JSONWebKeySet): void {
    const isDenied = this.options.isDenied;
    const keys = isDenied ? jwks.keys.filter((k) => typeof k.kid !== 'string' || !isDenied(k.kid)) : jwks.keys;
    this.local = createLocalJWKSet({ keys });
    this.published = jwks;
    const fingerprints = new Map<string, string | undefined>();
    for (const k of keys) {
      if (typeof k.kid !== 'string') continue;
      // a kid named twice selects no key (jose's JWKSMultipleMatchingKeys): no cached token of it either
      fingerprints.set(k.kid, fingerprints.has(k.kid) ? undefined : JSON.stringify([k.kty, k.crv, k.x, k.y, k.n, k.e, k.alg]));
    }
    this.fingerprints = fingerprints;
  }

  private async fetch(): Promise<void> {
    const requestedAt = this.options.now();
    const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
    if (this.etag !== undefined && this.published) headers['if-none-match'] = this.etag;
    const res = await fetch(this.options.uri, {
      headers,
      redirect: 'error',
      signal: AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.timeoutMs)]),
    });
    if (res.status === 304 && this.published) {
      await res.body?.cancel();
      // §4.3.4: the 304's headers update the stored response's
      this.cacheControl = res.headers.get('cache-control') ?? this.cacheControl;
      this.etag = res.headers.get('etag') ?? this.etag;
      this.use(this.published); // keys denied since the last fetch stay out
    } else {
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`the JWK Set answered ${res.status}`);
      }
      const jwks: unknown = await res.json();
      if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new errors.JWKSInvalid('the JWK Set is not a JWK Set');
      this.use(jwks as JSONWebKeySet);
      this.cacheControl = res.headers.get('cache-control');
      this.etag = res.headers.get('etag') ?? undefined;
    }
    this.checkedAt = requestedAt;
    this.freshUntil = requestedAt + freshnessSeconds(this.cacheControl, res.headers.get('age')) * 1000;
  }
}
