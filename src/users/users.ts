// Users: accounts with argon2id passwords and role names. Disabling a user, changing the
// password or logging out revokes everything the user holds: their refresh families, and every
// access token issued before now (a `sub` entry on the deny list).
import crypto from 'node:crypto';
import type { Audit } from '../audit/audit.js';
import { type Clock, seconds } from '../clock.js';
import type { DenyList, NewDenyEntry } from '../denylist/denyList.js';
import type { AccessHorizon } from '../tokens/accessHorizon.js';
import type { StatusListRevocations } from '../statuslist/statusLists.js';
import type { RefreshFamilies } from '../tokens/refreshFamilies.js';
import type { User } from '../store/schema.js';
import { UserRepository } from '../store/users.js';
import { PasswordHasher } from './passwords.js';
import { type Db, inTransaction } from '../store/database.js';

export class UserError extends Error {
  override name = 'UserError';
}

export interface UserView {
  id: string;
  username: string;
  enabled: boolean;
  roles: string[];
}

const USERNAME = /^[^\s\p{C}]{1,128}$/u;
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface UserServiceDeps {
  db: Db;
  clock: Clock;
  hasher: PasswordHasher;
  denyList: DenyList;
  audit: Audit;
  /** How long a `sub` entry must stay listed: until every token issued so far has expired. */
  horizon: AccessHorizon;
  families: RefreshFamilies;
  statusLists: StatusListRevocations;
}

export class UserService {
  private readonly repo: UserRepository;
  constructor(private readonly deps: UserServiceDeps) {
    this.repo = new UserRepository(deps.db);
  }

  static validateUsername(username: string): void {
    if (!USERNAME.test(username)) throw new UserError('a username has 1 to 128 characters, no spaces or control characters');
  }

  static validateRole(role: string): void {
    if (!ROLE.test(role)) throw new UserError(`invalid role name ${JSON.stringify(role)} (letters, digits, _ . : -)`);
  }

  async find(username: string): Promise<User> {
    const user = await this.repo.byUsername(username);
    if (!user) throw new UserError(`no user ${username}`);
    return user;
  }

  async view(user: User): Promise<UserView> {
    return { id: user.id, username: user.username, enabled: user.enabled === 1, roles: await this.repo.roles(user.id) };
  }

  async show(username: string): Promise<UserView> {
    return this.view(await this.find(username));
  }

  async list(): Promise<UserView[]> {
    const users = await this.repo.list();
    const roles = await this.repo.rolesByUser(users.map((u) => u.id));
    return users.map((u) => ({ id: u.id, username: u.username, enabled: u.enabled === 1, roles: roles.get(u.id) ?? [] }));
  }

  async add(username: string, password: string, roles: string[] = []): Promise<UserView> {
    UserService.validateUsername(username);
    roles.forEach(UserService.validateRole);
    const problem = PasswordHasher.validate(password);
    if (problem) throw new UserError(problem);
    if (await this.repo.byUsername(username)) throw new UserError(`user ${username} already exists`);
    const hash = await this.deps.hasher.hash(password);
    const now = this.deps.clock.now();
    const user: User = { id: crypto.randomUUID(), username, password_hash: hash, enabled: 1, created_at: now, updated_at: now };
    await inTransaction(this.deps.db, async (trx) => {
      const repo = new UserRepository(trx);
      await repo.insert(user);
      for (const role of roles) await repo.addRole(user.id, role, now);
    });
    await this.deps.audit.record({ type: 'user.created', username, user_id: user.id, detail: { roles } });
    return this.view(user);
  }

  async setEnabled(username: string, enabled: boolean): Promise<UserView> {
    const user = await this.find(username);
    await this.repo.update(user.id, { enabled: enabled ? 1 : 0, updated_at: this.deps.clock.now() });
    if (!enabled) await this.revokeEverything(user, 'user disabled');
    await this.deps.audit.record({ type: enabled ? 'user.enabled' : 'user.disabled', username, user_id: user.id });
    return this.view({ ...user, enabled: enabled ? 1 : 0 });
  }

  async setPassword(username: string, password: string): Promise<UserView> {
    const problem = PasswordHasher.validate(password);
    if (problem) throw new UserError(problem);
    const user = await this.find(username);
    const hash = await this.deps.hasher.hash(password);
    await this.repo.update(user.id, { password_hash: hash, updated_at: this.deps.clock.now() });
    await this.revokeEverything(user, 'password changed');
    await this.deps.audit.record({ type: 'user.password_changed', username, user_id: user.id });
    return this.view(user);
  }

  async changeRoles(username: string, add: string[], remove: string[]): Promise<UserView> {
    [...add, ...remove].forEach(UserService.validateRole);
    const user = await this.find(username);
    const now = this.deps.clock.now();
    await inTransaction(this.deps.db, async (trx) => {
      const repo = new UserRepository(trx);
      for (const role of add) await repo.addRole(user.id, role, now);
      for (const role of remove) await repo.removeRole(user.id, role);
    });
    if (add.length + remove.length > 0) await this.deps.audit.record({ type: 'user.roles_changed', username, user_id: user.id, detail: { added: add, removed: remove } });
    return this.view(user);
  }

  async logout(username: string): Promise<{ families: number }> {
    const user = await this.find(username);
    const families = await this.revokeEverything(user, 'logout');
    await this.deps.audit.record({ type: 'user.logout', username, user_id: user.id, detail: { families } });
    return { families };
  }

  /** Revokes every refresh family of the user and denies every access token issued up to now. */
  async revokeEverything(user: User, reason: string): Promise<number> {
    const now = this.deps.clock.now();
    let count = 0;
    await inTransaction(this.deps.db, async (trx) => {
      // the sub entry covers the families' access tokens too; their sids say the sessions ended
      const revoked = await this.deps.families.revokeAllOfUser(user.id, reason, now, trx);
      count = revoked.count;
      // until the last token issued to the user expires, whatever the lifetimes have become since
      const entries: NewDenyEntry[] = [...revoked.entries, { type: 'sub', value: user.id, issued_before: seconds(now), expires_at: await this.deps.horizon.until(trx) }];
      await this.deps.denyList.add(entries, trx);
      // every token of the user goes INVALID in the status lists, in the same transaction (issue 18)
      await this.deps.statusLists.revokeUser(user.id, trx);
    });
    await this.deps.denyList.sync();
    return count;
  }
}
