// Signing keys: generation, states (next → active → retired → removed), rotation, and the
// in-memory keyring a running server signs and verifies with. The keyring reloads from the store
// when the keys change (a CLI rotation reaches a running server within a second or two).
import crypto from 'node:crypto';
import { type CryptoKey, type JWK, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import { ALGORITHMS, type SigningAlgorithm } from '../config.js';
import type { DenyList } from '../denylist/denyList.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import type { Database, KeyState, SigningKeyRow } from '../store/schema.js';
import { SigningKeyRepository } from '../store/signingKeys.js';
import { decryptPrivateKey, encryptPrivateKey } from './encryption.js';

export { ALGORITHMS, type SigningAlgorithm };

/** States whose public key is in the JWKS: tokens they signed still verify. */
export const PUBLISHED_STATES: readonly KeyState[] = ['next', 'active', 'retired'];

export interface PublicJwk extends JWK {
  kid: string;
  alg: string;
  use: 'sig';
}

export interface ActiveKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
}

export interface KeyDeps {
  db: Kysely<Database>;
  kek: Buffer;
  clock: Clock;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

export function isAlgorithm(alg: string): alg is SigningAlgorithm {
  return (ALGORITHMS as readonly string[]).includes(alg);
}

/** A new key pair as (public JWK, private JWK), kid = RFC 7638 thumbprint. */
export async function generateSigningKey(alg: SigningAlgorithm): Promise<{ publicJwk: PublicJwk; privateJwk: JWK }> {
  const options = alg === 'RS256' || alg === 'PS256' ? { extractable: true, modulusLength: 2048 } : alg === 'EdDSA' ? { extractable: true, crv: 'Ed25519' } : { extractable: true };
  for (;;) {
    const { publicKey, privateKey } = await generateKeyPair(alg, options);
    const pair = await toJwkPair(alg, await exportJWK(publicKey), await exportJWK(privateKey));
    // a kid (base64url) that starts with "-" reads as an option on every command line
    // (`tollgate keys remove -x…`): one key in 64; draw again rather than make operators type `--`
    if (!pair.publicJwk.kid.startsWith('-')) return pair;
  }
}

async function toJwkPair(alg: SigningAlgorithm, pub: JWK, priv: JWK): Promise<{ publicJwk: PublicJwk; privateJwk: JWK }> {
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  const publicJwk: PublicJwk = { ...publicMembers(pub), kid, alg, use: 'sig' };
  return { publicJwk, privateJwk: { ...priv, kid, alg } };
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
function publicMembers(jwk: JWK): JWK {
  const out: JWK = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}

/**
 * An imported private key (PEM: PKCS#8, SEC1 or PKCS#1; or a private JWK). Without `alg`, the
 * key's type decides (EC P-256 → ES256, Ed25519 → EdDSA, RSA → RS256 or PS256, `preferred` first).
 */
export async function parsePrivateKey(text: string, options: { alg?: SigningAlgorithm | undefined; preferred?: SigningAlgorithm } = {}): Promise<{ publicJwk: PublicJwk; privateJwk: JWK }> {
  const { key, declared } = readPrivateKey(text);
  if (options.alg && declared && options.alg !== declared) throw new KeyError(`the JWK's alg ${declared} is not ${options.alg}`);
  const fits = algorithmsFor(key);
  const alg = options.alg ?? declared ?? (options.preferred && fits.includes(options.preferred) ? options.preferred : fits[0]);
  if (!alg) throw new KeyError(`a ${describeKey(key)} key signs none of ${ALGORITHMS.join(', ')}`);
  if (!fits.includes(alg)) throw new KeyError(`a ${describeKey(key)} key cannot sign ${alg}`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < 2048) throw new KeyError(`RSA keys must have at least 2048 bits (this one has ${bits})`);
  const priv = key.export({ format: 'jwk' }) as JWK;
  await importJWK(priv, alg).catch(() => {
    throw new KeyError(`the key is not a usable ${alg} private key`);
  });
  const pub = crypto.createPublicKey(key).export({ format: 'jwk' }) as JWK;
  return toJwkPair(alg, pub, priv);
}

function readPrivateKey(text: string): { key: crypto.KeyObject; declared?: SigningAlgorithm } {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let jwk: unknown;
    try {
      jwk = JSON.parse(trimmed);
    } catch {
      throw new KeyError('the file is neither a PEM private key nor valid JSON');
    }
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new KeyError('the JSON is not a JWK object');
    const { kty, d, alg } = jwk as JWK;
    // a shared secret would let every verifier mint tokens: HS256 is not offered (RFC 8725 §3.5)
    if (kty === 'oct') throw new KeyError('symmetric keys (HS256) are not accepted: import an EC, Ed25519 or RSA private key');
    if (typeof d !== 'string') throw new KeyError('the JWK has no private part ("d")');
    if (alg !== undefined && !isAlgorithm(alg)) throw new KeyError(`the JWK's alg ${alg} is not one of ${ALGORITHMS.join(', ')}`);
    try {
      const key = crypto.createPrivateKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
      return alg === undefined ? { key } : { key, declared: alg };
    } catch {
      throw new KeyError('the JWK is not a valid private key');
    }
  }
  if (trimmed.includes('-----BEGIN')) {
    if (trimmed.includes('ENCRYPTED PRIVATE KEY')) throw new KeyError('the PEM is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)');
    try {
      return { key: crypto.createPrivateKey(trimmed) };
    } catch {
      throw new KeyError('the PEM is not a readable private key');
    }
  }
  throw new KeyError('the file is neither a PEM private key nor a JWK');
}

function algorithmsFor(key: crypto.KeyObject): SigningAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? ['ES256'] : [];
    case 'ed25519':
      return ['EdDSA'];
    case 'rsa':
      return ['RS256', 'PS256'];
    default:
      return [];
  }
}

function describeKey(key: crypto.KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType ?? 'unknown'} ${curve}` : (key.asymmetricKeyType ?? 'unknown');
}

/** The key lifecycle in the store; used by the server (schedule), the CLI and tests. */
export interface KeyManagerDeps extends KeyDeps {
  denyList: DenyList;
  horizon: AccessHorizon;
}

export class KeyManager {
  readonly repo: SigningKeyRepository;
  constructor(private readonly deps: KeyManagerDeps) {
    this.repo = new SigningKeyRepository(deps.db);
  }

  private async insertKey(repo: SigningKeyRepository, state: 'next' | 'active', pair: { publicJwk: PublicJwk; privateJwk: JWK }): Promise<SigningKeyRow> {
    const now = this.deps.clock.now();
    const kid = pair.publicJwk.kid;
    if (await repo.find(kid)) throw new KeyError(`key ${kid} is already in the store`);
    await this.assertKekOpens(repo);
    const row = {
      kid,
      alg: pair.publicJwk.alg,
      state,
      public_jwk: JSON.stringify(pair.publicJwk),
      private_jwk_enc: encryptPrivateKey(this.deps.kek, kid, JSON.stringify(pair.privateJwk)),
      created_at: now,
      activated_at: state === 'active' ? now : null,
    };
    await repo.insert(row);
    return { ...row, retired_at: null, removed_at: null };
  }

  /**
   * A CLI run with another key-encryption key than the server's would store keys the server can't
   * open, and the server would fail at the rotation that activates one: refuse before writing.
   */
  private async assertKekOpens(repo: SigningKeyRepository): Promise<void> {
    const [sample] = [...(await repo.byState('active')), ...(await repo.byState('next'))];
    if (sample) decryptPrivateKey(this.deps.kek, sample.kid, sample.private_jwk_enc);
  }

  /** A fresh install: one active key and one pre-published next key. Safe when processes race. */
  async ensureInitialKeys(alg: SigningAlgorithm): Promise<boolean> {
    if ((await this.repo.byState('active')).length > 0) return false;
    const active = await generateSigningKey(alg);
    const next = await generateSigningKey(alg);
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        const repo = new SigningKeyRepository(trx);
        if ((await repo.byState('active')).length > 0) return;
        await this.insertKey(repo, 'active', active);
        if ((await repo.byState('next')).length === 0) await this.insertKey(repo, 'next', next);
      });
    } catch (e) {
      // another process created the active key first (the unique index on the active state)
      if ((await this.repo.byState('active')).length > 0) return false;
      throw e;
    }
    return true;
  }

  /** Adds a `next` key: published now, signing after the next rotation. */
  async generate(alg: SigningAlgorithm): Promise<SigningKeyRow> {
    return this.insertKey(this.repo, 'next', await generateSigningKey(alg));
  }

  /** Adds an imported private key as a `next` key (see parsePrivateKey for the formats). */
  async import(text: string, options: { alg?: SigningAlgorithm | undefined; preferred?: SigningAlgorithm } = {}): Promise<SigningKeyRow> {
    return this.insertKey(this.repo, 'next', await parsePrivateKey(text, options));
  }

  /**
   * next → active, active → retired, and a new next, in one transaction. Returns undefined when
   * another process rotated first. With `ifActive`, rotates only if that key is still the active
   * one (the schedule: several processes, one rotation). Refuses when there is no next key: a key
   * made and activated at once would sign before any cache has it.
   */
  async rotate(alg: SigningAlgorithm, options: { ifActive?: string } = {}): Promise<{ retired: string; activated: string; next: string } | undefined> {
    const current = options.ifActive ?? (await this.repo.byState('active'))[0]?.kid;
    if (!current) throw new KeyError('there is no active key to rotate (start the server once: it creates the first keys)');
    const fresh = await generateSigningKey(alg);
    return this.deps.db.transaction().execute(async (trx) => {
      const repo = new SigningKeyRepository(trx);
      const now = this.deps.clock.now();
      // The compare-and-set comes first: it takes the write lock before anything is read, so a
      // process that lost the race sees the winner's commit rather than failing on a stale snapshot.
      if (!(await repo.transition(current, 'active', 'retired', now))) return undefined;
      const [next] = await repo.byState('next');
      if (!next) throw new KeyError('there is no next key to promote: run `tollgate keys generate`, and rotate once JWKS caches have it (keys.jwksMaxAgeSeconds)');
      // the server must be able to sign with it (a next key stored under another key-encryption key)
      await importActive(this.deps.kek, next);
      if (!(await repo.transition(next.kid, 'next', 'active', now))) throw new KeyError(`key ${next.kid} changed during rotation`);
      const [remaining] = await repo.byState('next');
      const newNext = remaining ?? (await this.insertKey(repo, 'next', fresh));
      return { retired: current, activated: next.kid, next: newNext.kid };
    });
  }

  /** active keys can't be retired directly: rotate. */
  async retire(kid: string): Promise<void> {
    const key = await this.repo.find(kid);
    if (!key) throw new KeyError(`no key ${kid}`);
    if (key.state === 'active') throw new KeyError(`key ${kid} is the active key: run \`tollgate keys rotate\` instead`);
    if (key.state !== 'next') throw new KeyError(`key ${kid} is ${key.state}, not next`);
    if (!(await this.repo.transition(kid, 'next', 'retired', this.deps.clock.now()))) throw new KeyError(`key ${kid} changed meanwhile`);
  }

  /**
   * Unpublishes a key: every token it signed stops verifying (the talk's "remove the public key to
   * revoke"). Refuses the active key; `mayHaveLiveTokens` tells the caller to ask for --force.
   */
  async remove(kid: string, options: { force?: boolean } = {}): Promise<void> {
    const key = await this.repo.find(kid);
    if (!key) throw new KeyError(`no key ${kid}`);
    if (key.state === 'active') throw new KeyError(`key ${kid} is the active key: rotate first, then remove it`);
    if (key.state === 'removed') throw new KeyError(`key ${kid} is already removed`);
    const now = this.deps.clock.now();
    const maxTokenLifetimeMs = (await this.deps.horizon.windowSeconds()) * 1000;
    // a key that never signed (a next key, or one retired before activation) has no tokens
    const liveUntil = key.activated_at === null ? 0 : (key.retired_at ?? Number.POSITIVE_INFINITY) + maxTokenLifetimeMs;
    if (!options.force && liveUntil > now) {
      throw new KeyError(`key ${kid} may still have live tokens; pass --force to remove it and revoke them`);
    }
    await this.deps.db.transaction().execute(async (trx) => {
      if (!(await new SigningKeyRepository(trx).transition(kid, key.state, 'removed', now))) throw new KeyError(`key ${kid} changed meanwhile`);
      // verifiers cache the JWK Set: a `kid` entry on the feed makes them drop the key at once
      // (INTERFACE.md, Revocation reach), until every token it signed has expired
      if (liveUntil > now) await this.deps.denyList.add([{ type: 'kid', value: kid, expires_at: await this.deps.horizon.until(trx) }], trx);
    });
    await this.deps.denyList.sync();
  }

  async jwks(): Promise<{ keys: PublicJwk[] }> {
    const rows = await this.repo.all();
    return { keys: rows.filter((r) => PUBLISHED_STATES.includes(r.state)).map((r) => JSON.parse(r.public_jwk) as PublicJwk) };
  }
}

export async function importActive(kek: Buffer, row: SigningKeyRow): Promise<ActiveKey> {
  if (!isAlgorithm(row.alg)) throw new KeyError(`key ${row.kid} has an unsupported alg ${row.alg}`);
  const jwk = JSON.parse(decryptPrivateKey(kek, row.kid, row.private_jwk_enc)) as JWK;
  const privateKey = (await importJWK(jwk, row.alg)) as CryptoKey;
  return { kid: row.kid, alg: row.alg, privateKey };
}

export interface VerificationKey {
  kid: string;
  alg: SigningAlgorithm;
  key: CryptoKey;
}

/**
 * What a running server holds in memory: the active signing key, the published verification keys
 * and the precomputed JWKS body. `refresh()` reloads only when the store's keys changed.
 */
export class Keyring {
  private fingerprint = '';
  private active: ActiveKey | undefined;
  private verification = new Map<string, VerificationKey>();
  private body = '{"keys":[]}';
  private tag = '""';
  private listeners = new Set<() => void>();

  constructor(private readonly deps: KeyDeps) {}

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
    for (const l of this.listeners) l();
    return true;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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

  algorithms(): SigningAlgorithm[] {
    return [...new Set([...this.verification.values()].map((k) => k.alg))];
  }

  jwks(): { body: string; etag: string } {
    return { body: this.body, etag: this.tag };
  }
}
