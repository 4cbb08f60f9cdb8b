// DPoP at a resource server (RFC 9449 §7): the proof that came with the request (checked by
// ./dpopProof.ts, with `ath` = the hash of the presented token), the token's `cnf.jkt` = the proof
// key's thumbprint, and the proof's jti not seen before by this verifier. The jti cache is in
// memory and bounded: when it is full the oldest entries go, and every proof issued at or before
// the newest evicted one is refused from then on (a replay of an evicted jti can never pass).
import { VerificationError } from './errors.js';
import { ASYMMETRIC_ALGORITHMS, PROOF_FAILURE_TEXT, checkProof } from './dpopProof.js';

export interface DpopOptions {
  /** Seconds a proof's iat may be from now (plus the clock tolerance), either way. Default 60. */
  maxAge?: number;
  /** Proof algorithms accepted (asymmetric only). Default ES256, ES384, EdDSA, Ed25519, RS256, PS256. */
  algorithms?: string[];
  /** Proof jtis remembered (default 100,000). */
  jtiCacheSize?: number;
}

/** What verify() needs to check a proof: the DPoP header, the request's method and URL (htm, htu). */
export interface DpopRequest {
  proof: string | undefined;
  method: string;
  url: string;
}

export const DEFAULT_DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];

export class DpopChecker {
  readonly algorithms: readonly string[];
  private readonly maxAge: number;
  private readonly capacity: number;
  /** jti key -> iat (seconds), in insertion order. */
  private readonly seen = new Map<string, number>();
  /** Proofs issued at or before this (seconds) are refused: their jtis may have been evicted. */
  private floor = -Infinity;

  constructor(
    options: DpopOptions,
    private readonly deps: { now: () => number; toleranceSeconds: number },
  ) {
    this.algorithms = options.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
    for (const alg of this.algorithms) if (!ASYMMETRIC_ALGORITHMS.includes(alg)) throw new TypeError(`DPoP algorithm ${alg} is not allowed (one of ${ASYMMETRIC_ALGORITHMS.join(', ')})`);
    if (this.algorithms.length === 0) throw new TypeError('dpop.algorithms must name at least one algorithm');
    this.maxAge = options.maxAge ?? 60;
    if (!Number.isFinite(this.maxAge) || this.maxAge <= 0) throw new TypeError('dpop.maxAge must be a positive number of seconds');
    this.capacity = options.jtiCacheSize ?? 100_000;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new TypeError('dpop.jtiCacheSize must be a positive integer');
  }

  /** Checks the proof for `token` (already verified, with these claims); throws a VerificationError. */
  async check(token: string, cnf: unknown, request: DpopRequest): Promise<void> {
    const jkt = boundKey(cnf);
    if (jkt === undefined) throw new VerificationError('ERR_DPOP_BINDING', 'the access token is not DPoP-bound');
    if (typeof request.proof !== 'string' || request.proof === '') throw new VerificationError('ERR_DPOP_PROOF', 'a DPoP proof is required');
    const result = await checkProof(request.proof, {
      method: request.method,
      url: request.url,
      algorithms: this.algorithms,
      maxAgeSeconds: this.maxAge,
      toleranceSeconds: this.deps.toleranceSeconds,
      now: this.deps.now(),
      accessToken: token,
    });
    if (!result.ok) throw new VerificationError('ERR_DPOP_PROOF', PROOF_FAILURE_TEXT[result.reason]);
    if (result.proof.jkt !== jkt) throw new VerificationError('ERR_DPOP_BINDING', PROOF_FAILURE_TEXT.binding);
    if (!this.firstUse(`${jkt}.${result.proof.jti}`, result.proof.iat)) throw new VerificationError('ERR_DPOP_REPLAY', PROOF_FAILURE_TEXT.replay);
  }

  private firstUse(key: string, iat: number): boolean {
    if (iat <= this.floor || this.seen.has(key)) return false;
    if (this.seen.size >= this.capacity) this.evict();
    this.seen.set(key, iat);
    return true;
  }

  private evict(): void {
    // expired entries first: their proofs fail the iat check anyway
    const oldest = this.deps.now() / 1000 - this.maxAge - this.deps.toleranceSeconds;
    for (const [k, iat] of this.seen) if (iat < oldest) this.seen.delete(k);
    // still full: the oldest tenth goes, and nothing as old is accepted any more
    if (this.seen.size >= this.capacity) {
      let n = Math.max(1, Math.floor(this.capacity / 10));
      for (const [k, iat] of this.seen) {
        if (n-- <= 0) break;
        this.seen.delete(k);
        this.floor = Math.max(this.floor, iat);
      }
    }
  }
}

/** The `cnf.jkt` of a DPoP-bound token (RFC 9449 §6.1), or undefined. */
export function boundKey(cnf: unknown): string | undefined {
  if (typeof cnf !== 'object' || cnf === null) return undefined;
  const jkt = (cnf as { jkt?: unknown }).jkt;
  return typeof jkt === 'string' ? jkt : undefined;
}
