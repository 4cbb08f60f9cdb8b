// Users as the protocol sees them on the sign-in path: looked up by username, with `enabled` as a
// boolean and their role names. Administration (add, disable, roles) is UserService's.
import type { Db } from '../store/database.js';
import { UserRepository } from '../store/users.js';

export interface User {
  readonly id: string;
  readonly username: string;
  readonly passwordHash: string;
  readonly enabled: boolean;
}

export class UserDirectory {
  private readonly repo: UserRepository;

  constructor(deps: { db: Db }) {
    this.repo = new UserRepository(deps.db);
  }

  async byUsername(username: string): Promise<User | undefined> {
    const row = await this.repo.byUsername(username);
    return row && { id: row.id, username: row.username, passwordHash: row.password_hash, enabled: row.enabled === 1 };
  }

  roles(userId: string): Promise<string[]> {
    return this.repo.roles(userId);
  }
}
