// The in-memory index introspection and token verification ask: is this token denied? A map
// lookup per claim, never a query.
import type { DenyListRow } from '../store/schema.js';

export interface DeniableClaims {
  jti?: string | undefined;
  sid?: string | undefined;
  sub?: string | undefined;
  client_id?: string | undefined;
  iat?: number | undefined;
  /** The `kid` of the token's header. */
  kid?: string | undefined;
}

interface Cutoff {
  issuedBefore: number;
  expiresAt: number;
}

export class DenyIndex {
  private readonly jti = new Map<string, number>();
  private readonly sid = new Map<string, number>();
  private readonly sub = new Map<string, Cutoff>();
  private readonly client = new Map<string, Cutoff>();
  private readonly kid = new Map<string, number>();

  /** Adds an entry; a value listed twice keeps the later expiry and the later cut-off. */
  remember(row: DenyListRow): void {
    const expiresAt = Number(row.expires_at);
    if (row.type === 'jti' || row.type === 'sid' || row.type === 'kid') {
      const map = row.type === 'jti' ? this.jti : row.type === 'sid' ? this.sid : this.kid;
      map.set(row.value, Math.max(expiresAt, map.get(row.value) ?? 0));
    } else {
      const map = row.type === 'sub' ? this.sub : this.client;
      const prev = map.get(row.value);
      const issuedBefore = Number(row.issued_before ?? 0);
      map.set(row.value, { issuedBefore: Math.max(issuedBefore, prev?.issuedBefore ?? 0), expiresAt: Math.max(expiresAt, prev?.expiresAt ?? 0) });
    }
  }

  /**
   * Denied when its jti, sid or kid is listed, or its sub or client_id with issued_before ≥ iat
   * (same second: fail closed).
   */
  isDenied(claims: DeniableClaims, nowSeconds: number): boolean {
    const live = (exp: number | undefined) => exp !== undefined && exp > nowSeconds;
    const cutOff = (c: Cutoff | undefined) => c !== undefined && live(c.expiresAt) && (claims.iat === undefined || c.issuedBefore >= claims.iat);
    if (claims.jti !== undefined && live(this.jti.get(claims.jti))) return true;
    if (claims.sid !== undefined && live(this.sid.get(claims.sid))) return true;
    if (claims.kid !== undefined && live(this.kid.get(claims.kid))) return true;
    if (claims.sub !== undefined && cutOff(this.sub.get(claims.sub))) return true;
    if (claims.client_id !== undefined && cutOff(this.client.get(claims.client_id))) return true;
    return false;
  }

  /** Entries held. */
  get size(): number {
    return this.jti.size + this.sid.size + this.sub.size + this.client.size + this.kid.size;
  }

  /** Drops entries expired at `nowSeconds`. */
  prune(nowSeconds: number): void {
    for (const map of [this.jti, this.sid, this.kid]) for (const [k, exp] of map) if (exp <= nowSeconds) map.delete(k);
    for (const map of [this.sub, this.client]) for (const [k, v] of map) if (v.expiresAt <= nowSeconds) map.delete(k);
  }
}
