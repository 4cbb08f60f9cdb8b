// The Token Status List (draft-ietf-oauth-status-list, issue 18), as the rest of Tollgate sees it:
// a slot for each token as it is issued, the bits each revocation sets (inside the revocation's own
// transaction), the published lists, and their upkeep. Narrow inputs only, so the grants and the
// services that revoke call it without knowing its tables.
//
// Who shares an index: every access token of one refresh family (one slot per family, taken in the
// password grant's existing transaction: no extra commit, and refreshes reuse it: no write at all).
// Revoking the family sets that one bit. client_credentials tokens get a slot each, handed out
// from per-client blocks reserved in one statement (allocator.ts). Revoking one access token of a
// family (RFC 7009) sets the family's bit, so the status list then reports the family's other
// access tokens issued so far INVALID too (stricter than introspection, which denies that `jti`
// only); the family moves to a fresh slot, so the tokens its refreshes issue afterwards are VALID.
import type { Clock } from '../clock.js';
import type { Keyring } from '../keys/keyring.js';
import { type SlotOwner, StatusSlotRepository } from '../store/statusSlots.js';
import { ClientBlocks, type Slot, SlotAllocator } from './allocator.js';
import { type RenderedList, StatusListPublisher } from './publisher.js';
import { type Db, inTransaction } from '../store/database.js';

export type { Slot };
export { STATUS_LIST_MEDIA_TYPE } from './publisher.js';

/** The `status` claim of a token (§6.1). */
export interface StatusClaim {
  status_list: { idx: number; uri: string };
}

/** The longest an access token can live (config and per-client limits, seconds). */
const MAX_ACCESS_TTL_SECONDS = 86400;

export interface StatusListsDeps {
  db: Db;
  clock: Clock;
  keyring: Keyring;
  issuer: string;
  ttlSeconds: number;
  listSize: number;
  clockToleranceSeconds: number;
  random?: (max: number) => number;
}

/** What the services that revoke need (users, clients): the bits, inside their transaction. */
export interface StatusListRevocations {
  revokeUser(userId: string, trx: Db): Promise<void>;
  revokeClient(clientId: string, trx: Db): Promise<void>;
}

export class StatusLists implements StatusListRevocations {
  private readonly allocator: SlotAllocator;
  private readonly blocks: ClientBlocks;
  private readonly publisher: StatusListPublisher;
  private readonly prefix: string;
  /** Each list's URI, encoded once (every token carries one). */
  private readonly uriCache = new Map<string, string>();

  constructor(private readonly deps: StatusListsDeps) {
    this.prefix = `${deps.issuer}/statuslists/`;
    this.allocator = new SlotAllocator({ db: deps.db, clock: deps.clock, listSize: deps.listSize, ...(deps.random ? { random: deps.random } : {}) });
    this.blocks = new ClientBlocks({ db: deps.db, clock: deps.clock, allocator: this.allocator, clockToleranceSeconds: deps.clockToleranceSeconds });
    this.publisher = new StatusListPublisher({ db: deps.db, clock: deps.clock, keyring: deps.keyring, issuer: deps.issuer, uri: (id) => this.uri(id), ttlSeconds: deps.ttlSeconds });
  }

  get ttlSeconds(): number {
    return this.deps.ttlSeconds;
  }

  uri(listId: string): string {
    let uri = this.uriCache.get(listId);
    if (uri === undefined) {
      uri = this.prefix + encodeURIComponent(listId);
      // a list's id never changes and lists are few (one per listSize slots in use): bounded anyway
      if (this.uriCache.size >= 1024) this.uriCache.clear();
      this.uriCache.set(listId, uri);
    }
    return uri;
  }

  claim(slot: Slot): StatusClaim {
    return { status_list: { idx: slot.idx, uri: this.uri(slot.listId) } };
  }

  /** At start: the first list exists before any transaction needs it. */
  async init(): Promise<void> {
    await new StatusSlotRepository(this.deps.db).ensureList(1, this.deps.listSize, this.deps.clock.now());
  }

  /**
   * A new refresh family's slot, in the transaction that inserts the family. Held until the family
   * can issue no more tokens and the last one it could issue has expired, whatever the lifetimes
   * become meanwhile (the longest allowed), so it needs no update as the family refreshes.
   */
  async familySlot(trx: Db, family: { id: string; user_id: string; client_id: string; expires_at: number }): Promise<Slot> {
    const until = family.expires_at + (MAX_ACCESS_TTL_SECONDS + this.deps.clockToleranceSeconds) * 1000;
    const [slot] = await this.allocator.allocate(trx, { user_id: family.user_id, client_id: family.client_id, family_id: family.id }, until);
    if (!slot) throw new Error('no status-list slot could be allocated');
    return slot;
  }

  /** A client_credentials token's own slot, from the client's block (usually no store access). */
  clientSlot(clientId: string, ttlSeconds: number): Promise<Slot> {
    return this.blocks.take(clientId, ttlSeconds);
  }

  /** One token's own slot, written now (a family from before status lists, which has none). */
  async tokenSlot(owner: { user_id: string; client_id: string; family_id: string }, ttlSeconds: number): Promise<Slot> {
    const until = this.deps.clock.now() + (ttlSeconds + this.deps.clockToleranceSeconds) * 1000;
    const [slot] = await this.allocator.allocate(this.deps.db, owner, until);
    if (!slot) throw new Error('no status-list slot could be allocated');
    return slot;
  }

  /** The list id of a `status.status_list.uri` of ours, or undefined. */
  listIdOf(uri: unknown): string | undefined {
    if (typeof uri !== 'string' || !uri.startsWith(this.prefix)) return undefined;
    const id = decodeURIComponent(uri.slice(this.prefix.length));
    return id === '' || id.includes('/') ? undefined : id;
  }

  /**
   * RFC 7009 revocation of one access token: its index goes INVALID. A family's token shares the
   * family's index (see the header): the family then moves to a fresh slot for what it issues next.
   */
  async revokeAccessToken(claims: { status?: unknown; sid?: string | undefined }, trx: Db): Promise<void> {
    const ref = (claims.status as Partial<StatusClaim> | undefined)?.status_list;
    const listId = this.listIdOf(ref?.uri);
    if (listId === undefined || !Number.isInteger(ref?.idx)) return;
    const idx = ref?.idx as number;
    await this.invalidate({ list_id: listId, idx }, trx);
    if (claims.sid === undefined) return;
    const repo = new StatusSlotRepository(trx);
    const family = await repo.familyForRehome(claims.sid);
    if (!family || family.status_list !== listId || Number(family.status_idx) !== idx) return;
    const slot = await this.familySlot(trx, { id: claims.sid, user_id: family.user_id, client_id: family.client_id, expires_at: Number(family.expires_at) });
    await repo.setFamilySlot(claims.sid, slot.listId, slot.idx);
  }

  /** A revoked refresh family (by the client, or reuse detection): its access tokens' index. */
  revokeFamily(familyId: string, trx: Db): Promise<void> {
    return this.invalidate({ family_id: familyId }, trx);
  }

  /** users disable|logout|set-password: every slot of the user. */
  revokeUser(userId: string, trx: Db): Promise<void> {
    return this.invalidate({ user_id: userId }, trx);
  }

  /** clients remove: every slot of the client, families and client_credentials tokens alike. */
  async revokeClient(clientId: string, trx: Db): Promise<void> {
    this.blocks.drop(clientId);
    await this.invalidate({ client_id: clientId }, trx);
  }

  private async invalidate(owner: SlotOwner, trx: Db): Promise<void> {
    await new StatusSlotRepository(trx).invalidate(owner);
    // this process's own revocation shows on its next request, without the once-a-second wait
    this.publisher.stale();
  }

  /** The Status List Token of a list, or undefined for no such list. */
  render(listId: string): Promise<RenderedList | undefined> {
    return this.publisher.render(listId);
  }

  /** Every list's URI (the Status List Aggregation, §9). */
  async uris(): Promise<string[]> {
    return (await new StatusSlotRepository(this.deps.db).lists()).map((l) => this.uri(l.id));
  }

  /**
   * Clears and frees the slots no token uses any more. An INVALID index stays set a while longer
   * after it is cleared (two ttl and a minute) so no verifier's cached list says a new token there
   * is revoked.
   */
  async prune(): Promise<{ cleared: number; freed: number }> {
    const quarantineMs = (2 * this.deps.ttlSeconds + 60) * 1000;
    const now = this.deps.clock.now();
    const result = await inTransaction(this.deps.db, (trx) => new StatusSlotRepository(trx).prune(now, quarantineMs));
    if (result.cleared > 0) this.publisher.stale();
    this.allocator.rewind();
    return result;
  }
}
