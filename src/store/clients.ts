import type { Kysely } from 'kysely';
import { inCodeUnitOrder } from './order.js';
import type { Client, Database, NewClient } from './schema.js';

export class ClientRepository {
  constructor(private readonly db: Kysely<Database>) {}

  find(clientId: string): Promise<Client | undefined> {
    return this.db.selectFrom('clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  }

  /**
   * The secret hash of each of these clients that still exists (null for a public client); a
   * removed client is absent. One query per 500 ids (well under SQLite's and PostgreSQL's bound
   * parameter limits): the SSE hub re-checks the clients of its open streams with it.
   */
  async secretHashes(clientIds: readonly string[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (let i = 0; i < clientIds.length; i += 500) {
      const ids = clientIds.slice(i, i + 500);
      const rows = await this.db.selectFrom('clients').select(['client_id', 'secret_hash']).where('client_id', 'in', ids).execute();
      for (const row of rows) out.set(row.client_id, row.secret_hash);
    }
    return out;
  }

  /** By client_id, in code-unit order on both dialects. */
  async list(): Promise<Client[]> {
    return inCodeUnitOrder(await this.db.selectFrom('clients').selectAll().execute(), 'client_id');
  }

  async insert(client: NewClient): Promise<void> {
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
