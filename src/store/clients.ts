import type { Kysely } from 'kysely';
import { inCodeUnitOrder } from './order.js';
import type { Client, Database } from './schema.js';

export class ClientRepository {
  constructor(private readonly db: Kysely<Database>) {}

  find(clientId: string): Promise<Client | undefined> {
    return this.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  }

  /** By client_id, in code-unit order on both dialects. */
  async list(): Promise<Client[]> {
    return inCodeUnitOrder(await this.db.selectFrom('clients').selectAll().execute(), 'client_id');
  }

  async insert(client: Client): Promise<void> {
    await this.db.insertInto('clients').values(client).execute();
  }

  async update(clientId: string, values: Partial<Omit<Client, 'client_id' | 'created_at'>>): Promise<void> {
    await this.db.updateTable('clients').set(values).where('client_id', '=', clientId).execute();
  }

  async remove(clientId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('clients').where('client_id', '=', clientId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** The longest per-client access-token lifetime, seconds (0 when none is set). */
  async maxAccessTokenTtl(): Promise<number> {
    const row = await this.db.selectFrom('clients').select((eb) => eb.fn.max('access_token_ttl').as('ttl')).executeTakeFirst();
    return Number(row?.ttl ?? 0);
  }
}
