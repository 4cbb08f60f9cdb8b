// The SQLite driver with more than one process on the file: a busy database is waited for
// without blocking the event loop, transactions take the write lock up front, and the wait ends
// with SQLITE_BUSY after the configured busy timeout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Store, migrate, openStore } from '../../../src/store/database.js';
import { isBusy } from '../../../src/store/sqlite/connection.js';
import { MAX_GROUP } from '../../../src/store/sqlite/driver.js';

/** A store on a temp file, and a second connection to the file: another process's view. */
function storeBesideAnother(): { store: Store; other: SQLite.Database } {
  const ctx = {} as { dir: string; store: Store; other: SQLite.Database };
  beforeEach(async () => {
    ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-driver-'));
    const file = path.join(ctx.dir, 'db.sqlite');
    ctx.store = openStore(file, { busyTimeoutMs: 400 });
    await migrate(ctx.store);
    ctx.other = new SQLite(file, { timeout: 0 });
  });
  afterEach(async () => {
    ctx.other.close();
    await ctx.store.close();
    fs.rmSync(ctx.dir, { recursive: true, force: true });
  });
  return ctx;
}

describe('the SQLite driver beside another connection', () => {
  const t = storeBesideAnother();

  const roles = async () => (await t.store.db.selectFrom('roles').select('name').orderBy('name').execute()).map((r) => r.name);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('waits for a write lock held elsewhere without blocking the event loop, then writes', async () => {
    t.other.exec('begin immediate');
    let settled = false;
    const insert = t.store.db.insertInto('roles').values({ name: 'a', created_at: 1 }).execute().finally(() => (settled = true));
    // timers still fire while the insert waits: the thread is not asleep in SQLite's busy handler
    const ticks: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(10);
      ticks.push(i);
    }
    expect(ticks).toHaveLength(5);
    expect(settled).toBe(false);
    t.other.exec('commit');
    await insert;
    expect(await roles()).toEqual(['a']);
  });

  it('begins a transaction only once it holds the write lock (BEGIN IMMEDIATE), so nothing in it fails on the lock', async () => {
    t.other.exec('begin immediate');
    t.other.prepare('insert into roles (name, created_at) values (?, ?)').run('first', 1);
    const tx = t.store.db.transaction().execute(async (trx) => {
      // a deferred BEGIN would have read before the other writer committed, then failed on the write
      const seen = (await trx.selectFrom('roles').select('name').execute()).map((r) => r.name);
      await trx.insertInto('roles').values({ name: 'second', created_at: 2 }).execute();
      return seen;
    });
    await sleep(30);
    t.other.exec('commit');
    expect(await tx).toEqual(['first']);
    expect(await roles()).toEqual(['first', 'second']);
  });

  it('gives up with SQLITE_BUSY after the busy timeout, and the store keeps working', async () => {
    t.other.exec('begin immediate');
    const started = Date.now();
    const error = await t.store.db.insertInto('roles').values({ name: 'a', created_at: 1 }).execute().catch((e: unknown) => e);
    expect(isBusy(error)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    const tx = await t.store.db.transaction().execute(() => Promise.resolve('ran')).catch((e: unknown) => e);
    expect(isBusy(tx)).toBe(true);
    t.other.exec('rollback');
    await t.store.db.insertInto('roles').values({ name: 'b', created_at: 1 }).execute();
    expect(await roles()).toEqual(['b']);
  });

  it('hands the connection out in arrival order', async () => {
    t.other.exec('begin immediate');
    const order: number[] = [];
    const all = Array.from({ length: 20 }, (_, i) =>
      t.store.db.transaction().execute(async (trx) => {
        await trx.insertInto('roles').values({ name: `r${String(i).padStart(2, '0')}`, created_at: i }).execute();
        order.push(i);
      }),
    );
    await sleep(20);
    t.other.exec('commit');
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('rolls a failed transaction back and leaves the connection usable', async () => {
    await expect(
      t.store.db.transaction().execute(async (trx) => {
        await trx.insertInto('roles').values({ name: 'x', created_at: 1 }).execute();
        await trx.insertInto('roles').values({ name: 'x', created_at: 1 }).execute(); // primary key
      }),
    ).rejects.toThrow(/UNIQUE/);
    expect(await roles()).toEqual([]);
    await t.store.db.insertInto('roles').values({ name: 'y', created_at: 1 }).execute();
    expect(await roles()).toEqual(['y']);
  });
});

describe('group commit: transactions of one turn of the event loop share a COMMIT', () => {
  const t = storeBesideAnother();

  /** Role names as another process sees them: only what is committed. */
  const committed = () => (t.other.prepare('select name from roles order by name').all() as Array<{ name: string }>).map((r) => r.name);
  const addRole = (name: string) => t.store.db.transaction().execute((trx) => trx.insertInto('roles').values({ name, created_at: 1 }).execute());

  it('returns from each transaction only once it is committed, for every member of a group', async () => {
    const names = Array.from({ length: MAX_GROUP * 2 + 3 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    const seenAtReturn = await Promise.all(names.map(async (name) => (await addRole(name), committed().includes(name))));
    expect(seenAtReturn.every(Boolean)).toBe(true);
    expect(committed()).toEqual(names);
  });

  it('shares one COMMIT between the transactions of a turn: the second runs inside the first one\'s transaction', async () => {
    const first = addRole('a');
    const second = t.store.db.transaction().execute(async (trx) => {
      const own = (await trx.selectFrom('roles').select('name').execute()).map((r) => r.name);
      return { own, elsewhere: committed() };
    });
    // the second sees the first's row, which no other connection sees yet: not committed on its own
    expect(await second).toEqual({ own: ['a'], elsewhere: [] });
    await first;
    expect(committed()).toEqual(['a']);
  });

  it('rolls a failed member back to its savepoint: the others of its group commit', async () => {
    const results = await Promise.allSettled([
      addRole('a'),
      t.store.db.transaction().execute(async (trx) => {
        await trx.insertInto('roles').values({ name: 'doomed', created_at: 1 }).execute();
        throw new Error('refused halfway');
      }),
      addRole('c'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(committed()).toEqual(['a', 'c']);
  });

  it('fails every member when the shared COMMIT fails, and keeps nothing of theirs', async () => {
    const results = await Promise.allSettled([
      addRole('a'),
      t.store.db.transaction().execute(async (trx) => {
        // a foreign key checked only at the outermost COMMIT: the group's
        await sql`pragma defer_foreign_keys = on`.execute(trx);
        await trx.insertInto('user_roles').values({ user_id: 'nobody', role_name: 'nothing' }).execute();
      }),
      addRole('c'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/FOREIGN KEY/);
    expect(committed()).toEqual([]);
    // the connection is clean afterwards
    await addRole('after');
    expect(committed()).toEqual(['after']);
  });

  it('commits the group before a statement outside any transaction runs: it never reads uncommitted work', async () => {
    const tx = addRole('a');
    const read = t.store.db.selectFrom('roles').select('name').execute();
    const rows = await read;
    expect(rows.map((r) => r.name)).toEqual(['a']);
    // what the plain read saw was already committed when it ran
    expect(committed()).toEqual(['a']);
    await tx;
  });

  it('refuses nothing when a member waits for a lock another process holds', async () => {
    t.other.exec('begin immediate');
    const all = Promise.all(['a', 'b', 'c'].map(addRole));
    await new Promise((resolve) => setTimeout(resolve, 30));
    t.other.exec('commit');
    await all;
    expect(committed()).toEqual(['a', 'b', 'c']);
  });
});

