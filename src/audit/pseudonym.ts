// A name typed at sign-in that matches no account may be anything, a password typed into the
// wrong field included: it is never stored as typed. HMAC-SHA256 under a key derived from the
// key-encryption key (HKDF, purpose "username pseudonym") keeps equal names equal, so attempts on
// one name can still be correlated, while a copied database without the KEK gives no name back
// (and a plain hash of a guessable name would).
import crypto from 'node:crypto';

export class UsernamePseudonyms {
  constructor(private readonly key: Buffer) {}

  /** `hmac-sha256:<base64url>`, the form the audit trail records. */
  of(username: string): string {
    return `hmac-sha256:${this.digest(username)}`;
  }

  /** The bare base64url HMAC. */
  digest(username: string): string {
    return crypto.createHmac('sha256', this.key).update(username, 'utf8').digest('base64url');
  }
}
