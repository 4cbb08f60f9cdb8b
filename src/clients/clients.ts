// OAuth clients: confidential (a generated 256-bit `tgs_…` secret, stored as SHA-256, compared in
// constant time) or public; allowed grants, allowed scopes, the audience of their access tokens,
// optional per-client lifetimes and refresh retry grace.
import type { Audit } from '../audit/audit.js';
import { type Clock, seconds } from '../clock.js';
import type { DenyList, NewDenyEntry } from '../denylist/denyList.js';
import { isScopeToken } from '../tokens/scope.js';
import { type ClientDefaults, toClient } from './client.js';
import { ClientRepository } from '../store/clients.js';
import type { Client } from '../store/schema.js';
import { UserRepository } from '../store/users.js';
import type { StatusListRevocations } from '../statuslist/statusLists.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import type { RefreshFamilies } from '../tokens/refreshFamilies.js';
import { CLIENT_SECRET_PREFIX, mintSecret, sha256Hex } from '../tokens/secrets.js';
import { type Db, inTransaction } from '../store/database.js';


export class ClientError extends Error {
  override name = 'ClientError';
}

export interface ClientView {
  client_id: string;
  public: boolean;
  grants: string[];
  scope: string;
  audience: string;
  refresh_grace_seconds: number | null;
  access_token_ttl: number | null;
  /** Every token request must carry a DPoP proof (RFC 9449 §5.2 dpop_bound_access_tokens). */
  require_dpop: boolean;
}

export interface ClientSpec {
  public?: boolean | undefined;
  grants?: string[] | undefined;
  scope?: string | undefined;
  audience?: string | undefined;
  refreshGraceSeconds?: number | null | undefined;
  accessTokenTtl?: number | null | undefined;
  requireDpop?: boolean | undefined;
}

// RFC 6749 Appendix A.1: client_id = *VSCHAR, VSCHAR = %x20-7E. Printable ASCII only, so an id
// can never carry CR/LF into a header or a log line, nor an escape sequence to a terminal.
const CLIENT_ID = /^[\x20-\x7E]{1,128}$/;
const AUDIENCE = /^[\x21-\x7E]{1,256}$/;

export function isClientId(value: string): boolean {
  return CLIENT_ID.test(value);
}

/**
 * True for an id a resource server could take for a user's `sub` (a UUID): any version and case,
 * with or without hyphens, braces or a urn:uuid: prefix (PostgreSQL's uuid type and most UUID
 * parsers accept all of them). A client_credentials token's `sub` is its client id, so a client
 * named like a user would get tokens that speak for that user.
 */
export function hasUuidForm(clientId: string): boolean {
  const bare = clientId.replace(/^urn:uuid:/i, '').replace(/^\{(.*)\}$/, '$1').replaceAll('-', '');
  return /^[0-9a-f]{32}$/i.test(bare);
}

export function clientView(c: Client): ClientView {
  return {
    client_id: c.client_id,
    public: c.public === 1,
    grants: c.grants.split(' ').filter(Boolean),
    scope: c.scope,
    audience: c.audience,
    refresh_grace_seconds: c.refresh_grace_seconds,
    access_token_ttl: c.access_token_ttl,
    require_dpop: c.require_dpop === 1,
  };
}

function validate(spec: ClientSpec, isPublic: boolean, grantTypes: readonly string[]): void {
  for (const g of spec.grants ?? []) if (!grantTypes.includes(g)) throw new ClientError(`unknown grant ${g} (one of ${grantTypes.join(', ')})`);
  if (isPublic && spec.grants?.includes('client_credentials')) throw new ClientError('a public client cannot use client_credentials');
  if (spec.scope !== undefined) for (const s of spec.scope.split(' ').filter(Boolean)) if (!isScopeToken(s)) throw new ClientError(`invalid scope ${JSON.stringify(s)}`);
  if (spec.audience !== undefined && !AUDIENCE.test(spec.audience)) throw new ClientError('an audience is 1 to 256 visible characters');
  const grace = spec.refreshGraceSeconds;
  if (grace !== undefined && grace !== null && (!Number.isInteger(grace) || grace < 0 || grace > 60)) throw new ClientError('--refresh-grace is whole seconds from 0 to 60');
  const ttl = spec.accessTokenTtl;
  if (ttl !== undefined && ttl !== null && (!Number.isInteger(ttl) || ttl < 1 || ttl > 86400)) throw new ClientError('an access-token lifetime is 1 to 86400 seconds');
}

export interface ClientServiceDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  denyList: DenyList;
  horizon: AccessHorizon;
  /** The Token Status List: the client's indices go INVALID with its removal. */
  statusLists: StatusListRevocations;
  /** The configured defaults of the per-client settings (a null column means the default). */
  defaults: ClientDefaults;
  families: RefreshFamilies;
  /** The grant types a client may be given (the protocol's). */
  grantTypes: readonly string[];
}

export class ClientService {
  private readonly repo: ClientRepository;
  private readonly credentialListeners = new Set<(clientId: string) => void>();

  private readonly changeListeners = new Set<(clientId: string) => void>();

  /** Called after a client is removed or its secret rotated through this service (the SSE hub ends its streams). */
  onCredentialsChanged(listener: (clientId: string) => void): void {
    this.credentialListeners.add(listener);
  }

  /** Called after any change to a client through this service (the authenticator drops its cached copy). */
  onChanged(listener: (clientId: string) => void): void {
    this.changeListeners.add(listener);
  }

  private changed(clientId: string): void {
    for (const listener of this.changeListeners) listener(clientId);
  }

  constructor(private readonly deps: ClientServiceDeps) {
    this.repo = new ClientRepository(deps.db);
  }

  async find(clientId: string): Promise<Client> {
    const c = await this.repo.find(clientId);
    if (!c) throw new ClientError(`no client ${clientId}`);
    return c;
  }

  async show(clientId: string): Promise<ClientView> {
    return clientView(await this.find(clientId));
  }

  async list(): Promise<ClientView[]> {
    return (await this.repo.list()).map(clientView);
  }

  async add(clientId: string, spec: ClientSpec): Promise<{ client: ClientView; secret?: string }> {
    if (!CLIENT_ID.test(clientId)) throw new ClientError('a client_id has 1 to 128 printable ASCII characters (RFC 6749 VSCHAR)');
    if (hasUuidForm(clientId)) throw new ClientError('a client_id may not have the form of a UUID: users\' ids (the sub of their tokens) have it');
    const isPublic = spec.public ?? false;
    validate(spec, isPublic, this.deps.grantTypes);
    if (spec.audience === undefined && !AUDIENCE.test(clientId)) throw new ClientError('this client_id has a space: give an --audience (an audience is 1 to 256 visible characters)');
    if (await this.repo.find(clientId)) throw new ClientError(`client ${clientId} already exists`);
    if (await new UserRepository(this.deps.db).byId(clientId)) throw new ClientError(`${clientId} is a user's id: a client named so would get tokens with that user's sub`);
    const secret = isPublic ? undefined : mintSecret(CLIENT_SECRET_PREFIX);
    const now = this.deps.clock.now();
    const grants = spec.grants && spec.grants.length > 0 ? [...new Set(spec.grants)] : ['password', 'refresh_token'];
    const row: Client = {
      client_id: clientId,
      secret_hash: secret ? sha256Hex(secret) : null,
      public: isPublic ? 1 : 0,
      grants: grants.join(' '),
      scope: [...new Set((spec.scope ?? '').split(' ').filter(Boolean))].join(' '),
      audience: spec.audience ?? clientId,
      access_token_ttl: spec.accessTokenTtl ?? null,
      refresh_idle_ttl: null,
      refresh_absolute_ttl: null,
      refresh_grace_seconds: spec.refreshGraceSeconds ?? null,
      created_at: now,
      updated_at: now,
      require_dpop: spec.requireDpop ? 1 : 0,
    };
    await this.repo.insert(row);
    await this.deps.audit.record({ type: 'client.created', client_id: clientId, detail: { public: isPublic, grants, require_dpop: row.require_dpop === 1 } });
    return secret ? { client: clientView(row), secret } : { client: clientView(row) };
  }

  async update(clientId: string, spec: ClientSpec): Promise<ClientView> {
    const current = await this.find(clientId);
    validate(spec, current.public === 1, this.deps.grantTypes);
    const values: Partial<Client> = { updated_at: this.deps.clock.now() };
    if (spec.grants && spec.grants.length > 0) values.grants = [...new Set(spec.grants)].join(' ');
    if (spec.scope !== undefined) values.scope = [...new Set(spec.scope.split(' ').filter(Boolean))].join(' ');
    if (spec.audience !== undefined) values.audience = spec.audience;
    if (spec.refreshGraceSeconds !== undefined) values.refresh_grace_seconds = spec.refreshGraceSeconds;
    if (spec.accessTokenTtl !== undefined) values.access_token_ttl = spec.accessTokenTtl;
    if (spec.requireDpop !== undefined) values.require_dpop = spec.requireDpop ? 1 : 0;
    await inTransaction(this.deps.db, async (trx) => {
      // tokens issued under the old lifetime outlive the change: deny entries must cover them
      if (spec.accessTokenTtl !== undefined) await this.deps.horizon.issuedWith(this.ttlOf(current), trx);
      await new ClientRepository(trx).update(clientId, values);
    });
    await this.deps.audit.record({ type: 'client.updated', client_id: clientId, detail: { changed: Object.keys(values).filter((k) => k !== 'updated_at') } });
    this.changed(clientId);
    return clientView({ ...current, ...values });
  }

  private ttlOf(client: Client): number {
    return toClient(client, this.deps.defaults).lifetimes.accessTokenSeconds;
  }

  /**
   * Removes a client and revokes everything it holds, in one transaction (INTERFACE.md, Revocation
   * reach): every refresh family (its `sid` denied until its access tokens expire) and every access
   * token issued to it, client_credentials ones included (a `client` entry up to now).
   */
  async remove(clientId: string): Promise<{ families: number }> {
    const now = this.deps.clock.now();
    const families = await inTransaction(this.deps.db, async (trx) => {
      const client = await new ClientRepository(trx).find(clientId);
      if (!client) throw new ClientError(`no client ${clientId}`);
      const revoked = await this.deps.families.revokeAllOfClient(clientId, 'client removed', now, trx);
      const entries: NewDenyEntry[] = [...revoked.entries];
      await this.deps.horizon.issuedWith(this.ttlOf(client), trx);
      entries.push({ type: 'client', value: clientId, issued_before: seconds(now), expires_at: await this.deps.horizon.until(trx) });
      await this.deps.denyList.add(entries, trx);
      await this.deps.statusLists.revokeClient(clientId, trx);
      // last: the families go with the client (ON DELETE CASCADE), their sids are denied above
      await new ClientRepository(trx).remove(clientId);
      return revoked.count;
    });
    this.changed(clientId);
    for (const listener of this.credentialListeners) listener(clientId);
    await this.deps.denyList.sync();
    await this.deps.audit.record({ type: 'client.removed', client_id: clientId, detail: { families } });
    return { families };
  }

  async rotateSecret(clientId: string): Promise<string> {
    const current = await this.find(clientId);
    if (current.public === 1) throw new ClientError(`client ${clientId} is public: it has no secret`);
    const secret = mintSecret(CLIENT_SECRET_PREFIX);
    await this.repo.update(clientId, { secret_hash: sha256Hex(secret), updated_at: this.deps.clock.now() });
    this.changed(clientId);
    for (const listener of this.credentialListeners) listener(clientId);
    await this.deps.audit.record({ type: 'client.secret_rotated', client_id: clientId });
    return secret;
  }
}
