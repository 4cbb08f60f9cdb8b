// RFC 9449 §8 server nonces, without state: the nonce of a time slot is an HMAC of the slot number
// under a key derived from the key-encryption key (deriveKey), so every instance of a fleet (same
// KEK) issues and accepts the same nonces with no store round trip. A new nonce every
// `lifetimeSeconds`; the current and the previous slot's are accepted, so a nonce handed out just
// before a rotation still works for at least one lifetime.
import crypto from 'node:crypto';
import type { Clock } from '../clock.js';

export class DpopNonces {
  private cached: { slot: number; nonce: string } | undefined;

  constructor(
    private readonly key: Buffer,
    private readonly lifetimeSeconds: number,
    private readonly clock: Clock,
  ) {}

  /** The nonce to hand out now (DPoP-Nonce header). */
  current(): string {
    return this.ofSlot(this.slot());
  }

  /** True for the current or the previous slot's nonce. */
  accepts(nonce: string | undefined): boolean {
    if (nonce === undefined) return false;
    const slot = this.slot();
    return equal(nonce, this.ofSlot(slot)) || equal(nonce, this.ofSlot(slot - 1));
  }

  private slot(): number {
    return Math.floor(this.clock.now() / (this.lifetimeSeconds * 1000));
  }

  private ofSlot(slot: number): string {
    if (this.cached?.slot === slot) return this.cached.nonce;
    const nonce = crypto.createHmac('sha256', this.key).update(`dpop-nonce:${slot}`).digest('base64url');
    if (slot === this.slot()) this.cached = { slot, nonce };
    return nonce;
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
