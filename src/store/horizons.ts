import type { Kysely } from 'kysely';
import type { Database, HorizonsTable } from './schema.js';

type Name = HorizonsTable['name'];

export class HorizonRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async get(name: Name): Promise<number | undefined> {
    const row = await this.db.selectFrom('horizons').select('value').where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : Number(row.value);
  }

  /** Sets the value; with `onlyRaise`, never lowers it. */
  async set(name: Name, value: number, onlyRaise: boolean): Promise<void> {
    const current = await this.get(name);
    if (current === undefined) {
      await this.db.insertInto('horizons').values({ name, value }).onConflict((oc) => oc.column('name').doNothing()).execute();
      // a concurrent writer inserted first: fall through to the guarded update
      if ((await this.get(name)) === value) return;
    }
    let update = this.db.updateTable('horizons').set({ value }).where('name', '=', name);
    if (onlyRaise) update = update.where('value', '<', value);
    await update.execute();
  }
}
