// The Token Status List check (draft-ietf-oauth-status-list §8): the list a token's
// `status.status_list.uri` names is fetched (only from under the configured issuer: a URL read from
// a token is never fetched as such, or any token could aim the API at an internal address),
// verified with the issuer's JWK Set (typ statuslist+jwt, sub = the uri, iss, exp), cached for its
// `ttl`, and the token's index read: anything but VALID is ERR_TOKEN_REVOKED. A list that cannot be
// refreshed is used until `maxStaleness` seconds after its last successful fetch, then the check
// fails closed with ERR_STATUS_LIST_UNAVAILABLE. Node built-ins and jose only.
import zlib from 'node:zlib';
import { type JWTVerifyGetKey, jwtVerify } from 'jose';
import { VerificationError } from './errors.js';

export interface StatusListOptions {
  /** Seconds after its last successful fetch that a list may still be used (default 60). */
  maxStaleness?: number;
  /** One fetch's time limit in milliseconds (default 5000). */
  timeoutMs?: number;
}

interface CachedList {
  bytes: Uint8Array;
  bits: number;
  fetchedAt: number;
  /** Refetch after this (ms): the list's ttl, or sooner if it expires sooner. */
  refreshAt: number;
  /** The list's own exp (ms): never used past it. */
  expiresAt: number;
}

const STATUS_LIST_TYPE = 'statuslist+jwt';
/** Without a ttl claim, a list is refetched after this long. */
const DEFAULT_TTL_SECONDS = 60;
/** A list token larger than this is refused unread; inflated, a list is at most this many bytes. */
const MAX_TOKEN_BYTES = 4 * 1024 * 1024;
const MAX_LIST_BYTES = 16 * 1024 * 1024;
/** Lists kept at once (one per distinct uri under the issuer; Tollgate has a handful). */
const MAX_LISTS = 64;

export class StatusListChecker {
  private readonly cache = new Map<string, CachedList>();
  private readonly pending = new Map<string, Promise<CachedList>>();
  private readonly prefix: URL;
  private readonly maxStalenessMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly deps: { issuer: string; getKey: JWTVerifyGetKey; algorithms: string[]; now: () => number; clockTolerance: number },
    options: StatusListOptions,
  ) {
    const maxStaleness = options.maxStaleness ?? 60;
    if (!Number.isFinite(maxStaleness) || maxStaleness < 0) throw new TypeError('statusList.maxStaleness must be a non-negative number of seconds');
    this.maxStalenessMs = maxStaleness * 1000;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.prefix = new URL(`${deps.issuer.replace(/\/+$/, '')}/statuslists/`);
  }

  /** Throws ERR_TOKEN_REVOKED for a token whose status is not VALID; a token without a status has nothing to check. */
  async check(claims: Record<string, unknown>): Promise<void> {
    if (claims.status === undefined) return;
    const ref = (claims.status as { status_list?: unknown } | null)?.status_list as { idx?: unknown; uri?: unknown } | undefined;
    if (typeof ref !== 'object' || ref === null) return;
    const { idx, uri } = ref;
    if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || typeof uri !== 'string') throw new VerificationError('ERR_TOKEN_MALFORMED', 'the status claim is malformed');
    const url = this.allowed(uri);
    const list = await this.list(url, uri);
    const per = 8 / list.bits;
    const byte = Math.floor(idx / per);
    if (byte >= list.bytes.length) throw new VerificationError('ERR_TOKEN_MALFORMED', 'the status index is outside its list');
    const status = ((list.bytes[byte] ?? 0) >> ((idx % per) * list.bits)) & ((1 << list.bits) - 1);
    if (status !== 0) throw new VerificationError('ERR_TOKEN_REVOKED', 'the token has been revoked');
  }

  /** The list URL, only when it is a list of the configured issuer (same origin, under /statuslists/). */
  private allowed(uri: string): URL {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new VerificationError('ERR_TOKEN_MALFORMED', 'the status list uri is not a URL');
    }
    // URL parsing has removed any dot segments, so the prefix test cannot be walked out of
    const ok = url.origin === this.prefix.origin && url.pathname.startsWith(this.prefix.pathname) && url.pathname.length > this.prefix.pathname.length && !url.search && !url.hash && !url.username && !url.password && url.href === uri;
    if (!ok) throw new VerificationError('ERR_TOKEN_MALFORMED', 'the status list uri is not one of the issuer');
    return url;
  }

  private async list(url: URL, uri: string): Promise<CachedList> {
    const now = this.deps.now();
    const cached = this.cache.get(uri);
    if (cached && now < cached.refreshAt) return cached;
    let fetching = this.pending.get(uri);
    if (!fetching) {
      fetching = this.fetchList(url, uri).finally(() => this.pending.delete(uri));
      this.pending.set(uri, fetching);
    }
    try {
      const fresh = await fetching;
      if (!this.cache.has(uri) && this.cache.size >= MAX_LISTS) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(uri, fresh);
      return fresh;
    } catch (e) {
      // fail closed past maxStaleness: an old list may be missing the revocation that matters
      if (cached && now - cached.fetchedAt <= this.maxStalenessMs && now < cached.expiresAt) return cached;
      throw new VerificationError('ERR_STATUS_LIST_UNAVAILABLE', 'the status list could not be fetched within maxStaleness', { cause: e });
    }
  }

  private async fetchList(url: URL, uri: string): Promise<CachedList> {
    const fetchedAt = this.deps.now();
    // no redirects: a list must come from under the issuer, not wherever a response points
    const res = await fetch(url, { headers: { Accept: 'application/statuslist+jwt' }, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
    if (res.status !== 200) throw new Error(`the status list answered ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_TOKEN_BYTES) throw new Error('the status list is too large');
    const token = (await res.text()).trim();
    if (token.length > MAX_TOKEN_BYTES) throw new Error('the status list is too large');
    const { payload } = await jwtVerify(token, this.deps.getKey, {
      algorithms: this.deps.algorithms,
      typ: STATUS_LIST_TYPE,
      issuer: this.deps.issuer,
      subject: uri,
      requiredClaims: ['iat', 'exp', 'sub'],
      clockTolerance: this.deps.clockTolerance,
      currentDate: new Date(fetchedAt),
    });
    const statusList = payload.status_list as { bits?: unknown; lst?: unknown } | undefined;
    const bits = statusList?.bits;
    if (typeof bits !== 'number' || ![1, 2, 4, 8].includes(bits) || typeof statusList?.lst !== 'string' || !/^[A-Za-z0-9_-]*$/.test(statusList.lst)) throw new Error('the status list claim is malformed');
    const bytes = new Uint8Array(zlib.inflateSync(Buffer.from(statusList.lst, 'base64url'), { maxOutputLength: MAX_LIST_BYTES }));
    const ttl = typeof payload.ttl === 'number' && payload.ttl > 0 ? payload.ttl : DEFAULT_TTL_SECONDS;
    const expiresAt = (payload.exp as number) * 1000;
    return { bytes, bits, fetchedAt, refreshAt: Math.min(fetchedAt + ttl * 1000, expiresAt), expiresAt };
  }
}
