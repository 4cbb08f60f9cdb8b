// The verifier's in-memory deny list: the entries read from the feed, indexed by what they deny,
// each kept until no token it could deny can still be accepted.

/** The entry types this version understands; any other type on the feed is skipped (forward compatibility). */
export type FeedEntry =
  | { type: 'jti' | 'sid' | 'kid'; value: string; expires_at: number }
  | { type: 'sub' | 'client'; value: string; issued_before: number; expires_at: number };

export interface DeniableClaims {
  jti?: unknown;
  sid?: unknown;
  sub?: unknown;
  client_id?: unknown;
  iat?: unknown;
}

/** A `sub` or `client` entry: every token of that subject or client issued up to issuedBefore. */
interface IssuedBefore {
  issuedBefore: number;
  expiresAt: number;
}

export interface DenyIndexDeps {
  now: () => number;
  clockToleranceSeconds: number;
  /** Called when a `kid` entry arrives: the verifier drops that key from its JWK Set at once. */
  onKidDenied?: (kid: string) => void;
}

function parseEntry(raw: unknown): FeedEntry | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const e = raw as Record<string, unknown>;
  if (typeof e.value !== 'string' || typeof e.expires_at !== 'number' || !Number.isFinite(e.expires_at)) return undefined;
  if (e.type === 'jti' || e.type === 'sid' || e.type === 'kid') return { type: e.type, value: e.value, expires_at: e.expires_at };
  if ((e.type === 'sub' || e.type === 'client') && typeof e.issued_before === 'number' && Number.isFinite(e.issued_before)) {
    return { type: e.type, value: e.value, issued_before: e.issued_before, expires_at: e.expires_at };
  }
  return undefined;
}

export class DenyIndex {
  private readonly jti = new Map<string, number>();
  private readonly sid = new Map<string, number>();
  private readonly kid = new Map<string, number>();
  private readonly sub = new Map<string, IssuedBefore>();
  private readonly client = new Map<string, IssuedBefore>();

  constructor(private readonly deps: DenyIndexDeps) {}

  /**
   * Denied when its jti or sid is listed, or its sub or client_id with issued_before ≥ iat (same
   * second: fail closed, and a token without a numeric iat is denied too).
   */
  isDenied(claims: DeniableClaims): boolean {
    // runs on every verify: map lookups only, no closures, and the clock read only on a match
    if (typeof claims.jti === 'string' && this.liveEntry(this.jti.get(claims.jti))) return true;
    if (typeof claims.sid === 'string' && this.liveEntry(this.sid.get(claims.sid))) return true;
    if (typeof claims.sub === 'string' && this.issuedUpTo(this.sub.get(claims.sub), claims.iat)) return true;
    if (typeof claims.client_id === 'string' && this.issuedUpTo(this.client.get(claims.client_id), claims.iat)) return true;
    return false;
  }

  private liveEntry(expiresAt: number | undefined): boolean {
    return expiresAt !== undefined && this.live(expiresAt);
  }

  private issuedUpTo(entry: IssuedBefore | undefined, iat: unknown): boolean {
    return entry !== undefined && this.live(entry.expiresAt) && (typeof iat !== 'number' || entry.issuedBefore >= iat);
  }

  /** The key with this kid was removed at the issuer (a `kid` entry): nothing it signed is accepted. */
  isKidDenied(kid: unknown): boolean {
    if (typeof kid !== 'string') return false;
    const expiresAt = this.kid.get(kid);
    return expiresAt !== undefined && this.live(expiresAt);
  }

  /** One entry as the feed sent it; one this version does not understand, or already expired, is skipped. */
  apply(raw: unknown): void {
    const e = parseEntry(raw);
    if (!e || !this.live(e.expires_at)) return;
    if (e.type === 'sub' || e.type === 'client') {
      const map = e.type === 'sub' ? this.sub : this.client;
      const prev = map.get(e.value);
      map.set(e.value, { issuedBefore: Math.max(e.issued_before, prev?.issuedBefore ?? 0), expiresAt: Math.max(e.expires_at, prev?.expiresAt ?? 0) });
    } else {
      const map = e.type === 'jti' ? this.jti : e.type === 'sid' ? this.sid : this.kid;
      map.set(e.value, Math.max(e.expires_at, map.get(e.value) ?? 0));
      // a removed (perhaps leaked) key must stop verifying now, not when the JWK Set cache expires
      if (e.type === 'kid') this.deps.onKidDenied?.(e.value);
    }
  }

  prune(): void {
    for (const map of [this.jti, this.sid, this.kid]) for (const [k, exp] of map) if (!this.live(exp)) map.delete(k);
    for (const map of [this.sub, this.client]) for (const [k, v] of map) if (!this.live(v.expiresAt)) map.delete(k);
  }

  // An entry matters until every token it could deny has expired, and a token is still accepted for
  // clockTolerance past its exp: keep the entry that long too.
  private live(expiresAt: number): boolean {
    return expiresAt + this.deps.clockToleranceSeconds > Math.floor(this.deps.now() / 1000);
  }
}
