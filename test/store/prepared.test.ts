import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, type Store } from '../../src/store/database.js';
import { prepared } from '../../src/store/prepared.js';
import { createTestDatabase, testDialect } from '../testDatabase.js';

describe(`prepared queries (${testDialect()})`, () => {
  let store: Store;
  let drop: () => Promise<void>;
  beforeEach(async () => {
    const database = await createTestDatabase();
    store = database.open();
    drop = async () => {
      await store.close();
      await database.drop();
    };
    await migrate(store);
    const now = 1;
    await store.db.insertInto('roles').values([{ name: 'a', created_at: now }, { name: 'b', created_at: now }]).execute();
  });
  afterEach(() => drop());

  const byName = prepared<{ name: string }, { name: string; created_at: number }>(['name'], (db, p) => db.selectFrom('roles').selectAll().where('name', '=', p.name));

  it('runs the compiled statement with each call\'s arguments', async () => {
    expect((await byName(store.db, { name: 'a' })).rows).toEqual([{ name: 'a', created_at: 1 }]);
    expect((await byName(store.db, { name: 'b' })).rows).toEqual([{ name: 'b', created_at: 1 }]);
    expect((await byName(store.db, { name: 'c' })).rows).toEqual([]);
  });

  it('puts arguments in their places whatever order the SQL binds them in, and reports affected rows', async () => {
    const rename = prepared<{ to: string; from: string; at: number }, never>(['from', 'at', 'to'], (db, p) =>
      db.updateTable('roles').set({ name: p.to, created_at: p.at }).where('name', '=', p.from),
    );
    expect(Number((await rename(store.db, { from: 'a', to: 'z', at: 7 })).numAffectedRows)).toBe(1);
    expect(Number((await rename(store.db, { from: 'a', to: 'y', at: 8 })).numAffectedRows)).toBe(0);
    expect(await store.db.selectFrom('roles').selectAll().orderBy('name').execute()).toEqual([{ name: 'b', created_at: 1 }, { name: 'z', created_at: 7 }]);
  });

  it('runs inside a transaction and is rolled back with it', async () => {
    const insert = prepared<{ name: string; created_at: number }, never>(['name', 'created_at'], (db, p) => db.insertInto('roles').values(p));
    await expect(
      store.db.transaction().execute(async (trx) => {
        await insert(trx, { name: 'c', created_at: 2 });
        expect((await byName(trx, { name: 'c' })).rows).toHaveLength(1);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect((await byName(store.db, { name: 'c' })).rows).toEqual([]);
  });

  it('refuses a literal value among the parameters and an unused placeholder, when first compiled', async () => {
    const literal = prepared<{ name: string }, never>(['name'], (db, p) => db.updateTable('roles').set({ created_at: 5 }).where('name', '=', p.name));
    await expect(() => literal(store.db, { name: 'a' })).toThrow(/not a placeholder/);
    const unused = prepared<{ name: string; other: string }, never>(['name', 'other'], (db, p) => db.selectFrom('roles').selectAll().where('name', '=', p.name));
    await expect(() => unused(store.db, { name: 'a', other: 'b' })).toThrow(/other unused/);
  });
});
