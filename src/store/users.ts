import type { Kysely } from 'kysely';
import { inCodeUnitOrder } from './order.js';
import type { Database, User } from './schema.js';

export class UserRepository {
  constructor(private readonly db: Kysely<Database>) {}

  byUsername(username: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  byId(id: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** By username, in code-unit order on both dialects. */
  async list(): Promise<User[]> {
    return inCodeUnitOrder(await this.db.selectFrom('users').selectAll().execute(), 'username');
  }

  async insert(user: User): Promise<void> {
    await this.db.insertInto('users').values(user).execute();
  }

  async update(id: string, values: Partial<Pick<User, 'password_hash' | 'enabled' | 'updated_at'>>): Promise<void> {
    await this.db.updateTable('users').set(values).where('id', '=', id).execute();
  }

  async roles(userId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('user_roles').select('role_name').where('user_id', '=', userId).orderBy('role_name').execute();
    return rows.map((r) => r.role_name);
  }

  async rolesByUser(userIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (userIds.length === 0) return out;
    const rows = await this.db.selectFrom('user_roles').select(['user_id', 'role_name']).where('user_id', 'in', userIds).orderBy('role_name').execute();
    for (const r of rows) out.set(r.user_id, [...(out.get(r.user_id) ?? []), r.role_name]);
    return out;
  }

  async addRole(userId: string, role: string, at: number): Promise<void> {
    // ON CONFLICT DO NOTHING, not check-then-insert: two processes adding the same role must not
    // collide (on PostgreSQL a unique violation would also abort the caller's whole transaction)
    await this.db.insertInto('roles').values({ name: role, created_at: at }).onConflict((oc) => oc.column('name').doNothing()).execute();
    await this.db.insertInto('user_roles').values({ user_id: userId, role_name: role }).onConflict((oc) => oc.columns(['user_id', 'role_name']).doNothing()).execute();
  }

  async removeRole(userId: string, role: string): Promise<void> {
    await this.db.deleteFrom('user_roles').where('user_id', '=', userId).where('role_name', '=', role).execute();
  }
}
