// Client authentication on the hot path (RFC 6749 §2.3): every token, revocation and introspection
// request needs its client. A running server keeps clients for a second, so a change made
// elsewhere (the CLI, another instance) still takes effect within the 2 s INTERFACE.md promises;
// a change made through this process's ClientService drops the entry at once. Freshness is wall
// time, not protocol time, hence performance.now().
import type { Db } from '../store/database.js';
import { ClientRepository } from '../store/clients.js';
import crypto from 'node:crypto';
import { CLIENT_SECRET_PREFIX, digestBytes, isWellFormedSecret, sha256 } from '../tokens/secrets.js';
import { type Client, type ClientDefaults, toClient } from './client.js';

const CACHE_MS = 1000;
const CACHE_MAX = 10_000;

export class ClientAuthenticator {
  private readonly repo: ClientRepository;
  // with the stored secret hash decoded once, not on every request
  private readonly cache = new Map<string, { client: Client; at: number; digest: Buffer | undefined }>();

  constructor(deps: { db: Db; defaults: ClientDefaults }) {
    this.repo = new ClientRepository(deps.db);
    this.defaults = deps.defaults;
  }

  private readonly defaults: ClientDefaults;

  /** The client by id (cached), or undefined. */
  async byId(clientId: string): Promise<Client | undefined> {
    return (await this.entry(clientId))?.client;
  }

  private async entry(clientId: string): Promise<{ client: Client; digest: Buffer | undefined } | undefined> {
    const hit = this.cache.get(clientId);
    const now = performance.now();
    if (hit && now - hit.at < CACHE_MS) return hit;
    const row = await this.repo.find(clientId);
    if (!row) {
      this.cache.delete(clientId);
      return undefined;
    }
    const client = toClient(row, this.defaults);
    const entry = { client, at: now, digest: client.secretHash === null ? undefined : digestBytes(client.secretHash) };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(clientId, entry);
    return entry;
  }

  /** The current secret hash of each of these clients that still exists (uncached: the SSE hub's re-check). */
  secretHashes(clientIds: readonly string[]): Promise<Map<string, string | null>> {
    return this.repo.secretHashes(clientIds);
  }

  /** Drops a cached client (it was changed or removed through this process). */
  forget(clientId: string): void {
    this.cache.delete(clientId);
  }

  /**
   * The client if the credentials hold, else undefined. A confidential client needs its secret; a
   * public client must send none. The secret's shape and checksum are checked before any lookup.
   */
  async authenticate(clientId: string, secret: string | undefined): Promise<Client | undefined> {
    if (secret !== undefined && !isWellFormedSecret(CLIENT_SECRET_PREFIX, secret)) return undefined;
    const entry = await this.entry(clientId);
    if (!entry) return undefined;
    const { client, digest } = entry;
    if (client.isPublic) return secret === undefined ? client : undefined;
    if (secret === undefined || digest === undefined) return undefined;
    return crypto.timingSafeEqual(sha256(secret), digest) ? client : undefined;
  }
}
