// Serving `/statuslists/<id>`: the Status List Token (draft-ietf-oauth-status-list §5.1), a JWT
// signed with the active key. Rendered from the store, and only when needed: this process keeps
// each list's token and checks the list's version in the store at most once a second (one indexed
// read); it renders and signs again only when the version moved (a revocation committed anywhere
// in the fleet), the active key changed, or the token is `ttl` old. Requests in between get the
// same bytes, hence the same ETag.
import crypto from 'node:crypto';
import { type Clock, seconds } from '../clock.js';
import type { Keyring } from '../keys/keyring.js';
import { StatusSlotRepository } from '../store/statusSlots.js';
import { emptyStatuses, encodeStatuses, setStatus } from './encoding.js';
import type { Db } from '../store/database.js';

export const STATUS_LIST_TOKEN_TYPE = 'statuslist+jwt';
export const STATUS_LIST_MEDIA_TYPE = 'application/statuslist+jwt';
/** How often the store's version of a list is read, at most (wall time, not protocol time). */
const VERSION_CHECK_MS = 1000;

export interface RenderedList {
  token: string;
  etag: string;
  /** Clock ms when it was signed. */
  signedAt: number;
}

interface Cached extends RenderedList {
  version: number;
  kid: string;
  checkedAt: number;
}

export class StatusListPublisher {
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<Cached | undefined>>();

  constructor(
    private readonly deps: { db: Db; clock: Clock; keyring: Keyring; issuer: string; uri: (listId: string) => string; ttlSeconds: number },
  ) {}

  /** This process changed the list: the next request reads the version without waiting. */
  stale(listId?: string): void {
    for (const [id, entry] of this.cache) if (listId === undefined || id === listId) entry.checkedAt = Number.NEGATIVE_INFINITY;
  }

  /** The list's current Status List Token, or undefined for no such list. */
  async render(listId: string): Promise<RenderedList | undefined> {
    const entry = this.cache.get(listId);
    if (entry && performance.now() - entry.checkedAt < VERSION_CHECK_MS && this.usable(entry)) return entry;
    let rendering = this.pending.get(listId);
    if (!rendering) {
      rendering = this.refresh(listId, entry).finally(() => this.pending.delete(listId));
      this.pending.set(listId, rendering);
    }
    return rendering;
  }

  /** Signed less than `ttl` ago, with the key that signs now. */
  private usable(entry: Cached): boolean {
    return this.deps.clock.now() - entry.signedAt < this.deps.ttlSeconds * 1000 && entry.kid === this.deps.keyring.signingKey().kid;
  }

  private async refresh(listId: string, entry: Cached | undefined): Promise<Cached | undefined> {
    const checkedAt = performance.now();
    const repo = new StatusSlotRepository(this.deps.db);
    const list = await repo.list(listId);
    if (!list) {
      this.cache.delete(listId);
      return undefined;
    }
    const version = Number(list.version);
    if (entry && entry.version === version && this.usable(entry)) {
      entry.checkedAt = checkedAt;
      return entry;
    }
    // bits read after the version: a change committed in between shows in the bits and bumps the
    // version again, so the next check renders once more rather than missing it
    const bytes = emptyStatuses(Number(list.size));
    for (const idx of await repo.invalidIndices(listId)) setStatus(bytes, idx, 1);
    const key = this.deps.keyring.signingKey();
    const signedAt = this.deps.clock.now();
    const iat = seconds(signedAt);
    const ttl = this.deps.ttlSeconds;
    // exp two ttl ahead: a token is served until it is ttl old, and a verifier may then cache it
    // for another ttl (§5.1 `ttl`) without ever holding an expired one
    // iss: the access tokens carry one, so the list must too, the same (§5.1)
    const claims = { iss: this.deps.issuer, sub: this.deps.uri(listId), iat, exp: iat + 2 * ttl, ttl, status_list: { bits: 1, lst: encodeStatuses(bytes) } };
    const token = key.signer.sign(STATUS_LIST_TOKEN_TYPE, JSON.stringify(claims));
    const etag = `"${crypto.createHash('sha256').update(token).digest('base64url').slice(0, 27)}"`;
    const fresh: Cached = { token, etag, signedAt, version, kid: key.kid, checkedAt };
    this.cache.set(listId, fresh);
    return fresh;
  }
}
