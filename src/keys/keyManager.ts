// The key lifecycle in the store: next → active → retired → removed. Keys are published as `next`
// before they sign, rotated in one compare-and-set transaction, and removed (unpublished) with a
// `kid` deny-list entry while tokens they signed may still be live. Used by the server (the
// schedule, the first start), the CLI and tests.
import type { Clock } from '../clock.js';
import type { DenyList } from '../denylist/denyList.js';
import type { SigningKeyRow } from '../store/schema.js';
import { SigningKeyRepository } from '../store/signingKeys.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import { decryptPrivateKey, encryptPrivateKey } from './encryption.js';
import { generateSigningKey } from './generate.js';
import { parsePrivateKey } from './import.js';
import { type JwkPair, KeyError, PUBLISHED_STATES, type PublicJwk, type SigningAlgorithm, importActive } from './signingKey.js';
import { type Db, inTransaction } from '../store/database.js';

export interface KeyManagerDeps {
  db: Db;
  kek: Buffer;
  clock: Clock;
  denyList: DenyList;
  horizon: AccessHorizon;
}

export class KeyManager {
  readonly repo: SigningKeyRepository;
  constructor(private readonly deps: KeyManagerDeps) {
    this.repo = new SigningKeyRepository(deps.db);
  }

  private async insertKey(repo: SigningKeyRepository, state: 'next' | 'active', pair: JwkPair): Promise<SigningKeyRow> {
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
      await inTransaction(this.deps.db, async (trx) => {
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
    return inTransaction(this.deps.db, async (trx) => {
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
    await inTransaction(this.deps.db, async (trx) => {
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
