// Where a token's status goes: a random free index (never a counter: a sequential index would
// reveal how many tokens were issued, and when), in the first list with room, lists added as they
// fill. A slot is taken by inserting its row; the primary key (list, index) makes two live tokens of
// different owners never share one, on every instance, and the row stays until every token that
// used it has expired (StatusSlotRepository.prune), so an index is reused only after that.
import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import { type StatusListRow, StatusSlotRepository } from '../store/statusSlots.js';
import type { Db } from '../store/database.js';

export interface Slot {
  listId: string;
  idx: number;
}

export interface SlotOwnerIds {
  user_id: string | null;
  client_id: string;
  family_id: string | null;
}

/** Random tries in one list before moving on to the next: past this the list counts as full. */
const TRIES_PER_LIST = 6;

export class SlotAllocator {
  /** The position of the list this process allocates in (reset to the first by `rewind`). */
  private position = 1;
  /** Lists by position: a list's id and size never change, so each is read (or created) once. */
  private readonly known = new Map<number, StatusListRow>();

  constructor(private readonly deps: { db: Db; clock: Clock; listSize: number; random?: (max: number) => number }) {}

  private random(max: number): number {
    return this.deps.random ? this.deps.random(max) : crypto.randomInt(max);
  }

  /** Start again from the first list: slots freed there since are used before the later lists fill. */
  rewind(): void {
    this.position = 1;
  }

  /**
   * Takes `count` free slots (at least one; a block request may get fewer than asked for, never
   * none) for one owner, in `db` (the caller's transaction, or the store). One insert statement per
   * try; a try usually succeeds at once while the list is mostly free.
   */
  async allocate(db: Db, owner: SlotOwnerIds, expiresAt: number, count = 1): Promise<Slot[]> {
    const repo = new StatusSlotRepository(db);
    for (;;) {
      let list = this.known.get(this.position);
      if (!list) {
        const ensured = await repo.ensureList(this.position, this.deps.listSize, this.deps.clock.now());
        list = ensured.list;
        // remembered only once committed by someone: a list created here may be rolled back yet
        if (ensured.existed) this.known.set(list.position, list);
      }
      const taken = await this.tryList(repo, list, owner, expiresAt, count);
      if (taken.length > 0) return taken.map((idx) => ({ listId: list.id, idx }));
      this.position = list.position + 1;
    }
  }

  private async tryList(repo: StatusSlotRepository, list: StatusListRow, owner: SlotOwnerIds, expiresAt: number, count: number): Promise<number[]> {
    const size = Number(list.size);
    const taken: number[] = [];
    for (let attempt = 0; attempt < TRIES_PER_LIST && taken.length < count; attempt++) {
      const want = count - taken.length;
      // a few more candidates than needed: some are taken already
      const candidates = new Set<number>();
      const n = want === 1 ? 1 : Math.ceil(want * 1.25) + 2;
      while (candidates.size < Math.min(n, size)) candidates.add(this.random(size));
      const rows = [...candidates].map((idx) => ({ list_id: list.id, idx, ...owner, invalid: 0, expires_at: expiresAt }));
      taken.push(...(await repo.claim(rows)));
      // for a block, half a block is enough: the next request takes another
      if (count > 1 && taken.length >= Math.ceil(count / 2)) break;
    }
    return taken;
  }
}

/**
 * client_credentials tokens get a slot each (revoking one must not touch another), but not a store
 * write each: a process reserves a block of slots for a client in one statement and hands them out
 * from memory for at most BLOCK_LIFETIME_MS. Each slot of a block is held until the block's end
 * plus the client's token lifetime, so any token issued from it has expired by then. The block
 * size follows the client's rate (doubles when a block runs out, shrinks to what was used when it
 * times out), so a client asking once an hour wastes one slot, not hundreds.
 */
export const BLOCK_LIFETIME_MS = 60_000;
const MAX_BLOCK = 256;

interface Block {
  slots: Slot[];
  reservedAt: number;
  ttlSeconds: number;
  size: number;
  used: number;
}

export class ClientBlocks {
  private readonly blocks = new Map<string, Block>();
  private readonly pending = new Map<string, Promise<Block>>();

  constructor(
    private readonly deps: { db: Db; clock: Clock; allocator: SlotAllocator; clockToleranceSeconds: number },
  ) {}

  async take(clientId: string, ttlSeconds: number): Promise<Slot> {
    for (;;) {
      const block = this.blocks.get(clientId);
      const now = this.deps.clock.now();
      if (block && block.ttlSeconds === ttlSeconds && now - block.reservedAt < BLOCK_LIFETIME_MS) {
        const slot = block.slots.shift();
        if (slot) {
          block.used++;
          return slot;
        }
      }
      // one reservation at a time per client; the others wait for it and take from it
      let reserving = this.pending.get(clientId);
      if (!reserving) {
        reserving = this.reserve(clientId, ttlSeconds, block).finally(() => this.pending.delete(clientId));
        this.pending.set(clientId, reserving);
      }
      await reserving;
    }
  }

  /** Forgets the client's block (the client was removed: its slots are INVALID now). */
  drop(clientId: string): void {
    this.blocks.delete(clientId);
  }

  private async reserve(clientId: string, ttlSeconds: number, previous: Block | undefined): Promise<Block> {
    const now = this.deps.clock.now();
    let size = 4;
    if (previous) size = previous.slots.length === 0 ? Math.min(MAX_BLOCK, previous.size * 2) : Math.max(1, previous.used);
    const expiresAt = now + BLOCK_LIFETIME_MS + (ttlSeconds + this.deps.clockToleranceSeconds) * 1000;
    const slots = await this.deps.allocator.allocate(this.deps.db, { user_id: null, client_id: clientId, family_id: null }, expiresAt, size);
    const block: Block = { slots, reservedAt: now, ttlSeconds, size, used: 0 };
    this.blocks.set(clientId, block);
    return block;
  }
}
