// RFC 9449 at the token endpoint: the one DPoP header of a request, checked (./../verifier/dpopProof.ts
// holds the §4.3 checks shared with the resource-server verifier), its server nonce (./nonces.ts)
// and its jti against the fleet-wide replay cache (./replay.ts), in that order: the one store
// write comes last, so a proof refused for any other reason costs no write. The answer is the
// proof key's thumbprint, which the grants bind the tokens to (`cnf.jkt`).
import type { Clock } from '../clock.js';
import { InvalidDpopProof, UseDpopNonce } from '../oauth/errors.js';
import { PROOF_FAILURE_TEXT, type ProofFailure, checkProof } from '../verifier/dpopProof.js';
import type { DpopNonces } from './nonces.js';
import type { DpopReplayCache } from './replay.js';

/** Why a proof was refused: a check of §4.3, or the header itself (none where required, several). */
export type RefusalReason = ProofFailure | 'missing' | 'multiple';
export const REFUSAL_REASONS: readonly RefusalReason[] = ['missing', 'multiple', 'malformed', 'typ', 'alg', 'jwk', 'private_key', 'signature', 'jti', 'htm', 'htu', 'iat', 'nonce', 'ath', 'replay', 'binding'];

export interface DpopPolicy {
  iatWindowSeconds: number;
  requireNonce: boolean;
  algorithms: readonly string[];
}

export interface DpopProofsDeps {
  policy: DpopPolicy;
  clockToleranceSeconds: number;
  clock: Clock;
  nonces: DpopNonces;
  replay: DpopReplayCache;
  /** Counts refusals by reason (metrics). */
  onRefused?: ((reason: RefusalReason) => void) | undefined;
}

export class DpopProofs {
  constructor(private readonly deps: DpopProofsDeps) {}

  get algorithms(): readonly string[] {
    return this.deps.policy.algorithms;
  }

  /** The nonce to send in DPoP-Nonce with every token response, when nonces are on. */
  nonce(): string | undefined {
    return this.deps.policy.requireNonce ? this.deps.nonces.current() : undefined;
  }

  /**
   * The jkt of the request's valid proof; undefined when it sent none and none is required.
   * `headers` are the values of every DPoP header of the request (several are refused: §4.3 step 1).
   */
  async check(headers: readonly string[] | undefined, target: { method: string; url: string; required: boolean }): Promise<string | undefined> {
    if (!headers || headers.length === 0) {
      if (target.required) this.refuse('missing', 'this client must send a DPoP proof with every token request');
      return undefined;
    }
    if (headers.length > 1) this.refuse('multiple', 'exactly one DPoP header is allowed');
    const { policy, clock } = this.deps;
    const result = await checkProof(headers[0] ?? '', {
      method: target.method,
      url: target.url,
      algorithms: policy.algorithms,
      maxAgeSeconds: policy.iatWindowSeconds,
      toleranceSeconds: this.deps.clockToleranceSeconds,
      now: clock.now(),
      nonce: policy.requireNonce ? (n) => this.deps.nonces.accepts(n) : undefined,
    });
    if (!result.ok) this.refuse(result.reason);
    const { jkt, jti, iat } = result.proof;
    if (!(await this.deps.replay.firstUse(jkt, jti, iat))) this.refuse('replay');
    return jkt;
  }

  /** Drops replay-cache rows whose proofs are too old to be accepted anyway (the prune job). */
  prune(now: number): Promise<number> {
    return this.deps.replay.prune(now);
  }

  private refuse(reason: RefusalReason, text?: string): never {
    this.deps.onRefused?.(reason);
    if (reason === 'nonce') throw new UseDpopNonce(PROOF_FAILURE_TEXT.nonce, this.deps.nonces.current());
    throw new InvalidDpopProof(text ?? PROOF_FAILURE_TEXT[reason as ProofFailure]);
  }
}
