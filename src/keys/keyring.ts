// The in-memory keyring a running server signs and verifies with: the active signing key, the
// published verification keys and the precomputed JWKS body. It reloads from the store when the
// keys change (a CLI rotation reaches a running server within a second or two).
import crypto from 'node:crypto';
import { type CryptoKey, importJWK } from 'jose';
import { SigningKeyRepository } from '../store/signingKeys.js';
import { type ActiveKey, KeyError, PUBLISHED_STATES, type PublicJwk, type VerificationKey, importActive, isAlgorithm } from './signingKey.js';
import type { Db } from '../store/database.js';

export interface KeyringDeps {
  db: Db;
  kek: Buffer;
}

/** `refresh()` reloads only when the store's keys changed. */
export class Keyring {
  private fingerprint = '';
  private active: ActiveKey | undefined;
  private verification = new Map<string, VerificationKey>();
  private body = '{"keys":[]}';
  private tag = '""';

  constructor(private readonly deps: KeyringDeps) {}

  /** Reloads if the store's keys changed; throws KeyEncryptionError on a wrong KEK. */
  async refresh(): Promise<boolean> {
    const repo = new SigningKeyRepository(this.deps.db);
    const fingerprint = await repo.fingerprint();
    if (fingerprint === this.fingerprint && this.active) return false;
    const rows = await repo.all();
    const published = rows.filter((r) => PUBLISHED_STATES.includes(r.state));
    const activeRow = published.find((r) => r.state === 'active');
    const active = activeRow ? (this.active?.kid === activeRow.kid ? this.active : await importActive(this.deps.kek, activeRow)) : undefined;
    const verification = new Map<string, VerificationKey>();
    const jwks: PublicJwk[] = [];
    for (const row of published) {
      if (!isAlgorithm(row.alg)) continue;
      const jwk = JSON.parse(row.public_jwk) as PublicJwk;
      const known = this.verification.get(row.kid);
      verification.set(row.kid, known ?? { kid: row.kid, alg: row.alg, key: (await importJWK(jwk, row.alg)) as CryptoKey });
      jwks.push(jwk);
    }
    this.active = active;
    this.verification = verification;
    this.body = JSON.stringify({ keys: jwks });
    this.tag = `"${crypto.createHash('sha256').update(this.body).digest('base64url').slice(0, 27)}"`;
    this.fingerprint = fingerprint;
    return true;
  }

  signingKey(): ActiveKey {
    if (!this.active) throw new KeyError('no active signing key is loaded');
    return this.active;
  }

  hasActiveKey(): boolean {
    return this.active !== undefined;
  }

  /** A published key by kid, or undefined (removed, unknown). */
  verificationKey(kid: string): VerificationKey | undefined {
    return this.verification.get(kid);
  }

  jwks(): { body: string; etag: string } {
    return { body: this.body, etag: this.tag };
  }
}
