// Refresh tokens: opaque `tgr_…` strings, stored only as SHA-256 hashes. A successor is derived,
// not drawn at random: HMAC-SHA256 of the spent token under a key derived from the KEK. So a
// client's retry within the grace window can be given the very same successor without the store
// ever holding a token. Whoever holds that key and one token of a family can compute all its later
// tokens, so the key lives only in memory, derived from the KEK, which is never in the store.
import crypto from 'node:crypto';
import { REFRESH_TOKEN_PREFIX, formatSecret, isWellFormedSecret, mintSecret, sha256Hex } from './secrets.js';

export class RefreshTokenMinter {
  constructor(private readonly successorKey: Buffer) {}

  /** The first token of a new family. */
  mint(): string {
    return mintSecret(REFRESH_TOKEN_PREFIX);
  }

  /** The successor of a spent token: the same input always gives the same successor. */
  successorOf(token: string): string {
    return formatSecret(REFRESH_TOKEN_PREFIX, crypto.createHmac('sha256', this.successorKey).update(token).digest());
  }

  static isWellFormed(token: string): boolean {
    return isWellFormedSecret(REFRESH_TOKEN_PREFIX, token);
  }

  static hash(token: string): string {
    return sha256Hex(token);
  }
}
