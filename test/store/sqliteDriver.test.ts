// The SQLite driver with more than one process on the file: a busy database is waited for
// without blocking the event loop, transactions take the write lock up front, and the wait ends
// with SQLITE_BUSY after the configured busy timeout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Store, migrate, openStore } from '../../src/store/database.js';
import { isBusy } from '../../src/store/sqliteDriver.js';

describe('the SQLite driver beside another connection', () => {
  let dir: string;
  let file: string;
  let store: Store;
  let other: SQLite.Database;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-driver-'));
    file = path.join(dir, 'db.sqlite');
    store = openStore(file, { busyTimeoutMs: 400 });
    await migrate(store);
    other = new SQLite(file, { timeout: 0 });
  });
  afterEach(async () => {
    other.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const roles = async () => (await store.db.selectFrom('roles').select('name').orderBy('name').execute()).map((r) => r.name);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('waits for a write lock held elsewhere without blocking the event loop, then writes', async () => {
    other.exec('begin immediate');
    let settled = false;
    const insert = store.db.insertInto('roles').values({ name: 'a', created_at: 1 }).execute().finally(() => (settled = true));
    // timers still fire while the insert waits: the thread is not asleep in SQLite's busy handler
    const ticks: number[] = [];
    for (let i = 0; i < 5; i++) {
      await sleep(10);
      ticks.push(i);
    }
    expect(ticks).toHaveLength(5);
    expect(settled).toBe(false);
    other.exec('commit');
    await insert;
    expect(await roles()).toEqual(['a']);
  });

  it('begins a transaction only once it holds the write lock (BEGIN IMMEDIATE), so nothing in it fails on the lock', async () => {
    other.exec('begin immediate');
    other.prepare('insert into roles (name, created_at) values (?, ?)').run('first', 1);
    const tx = store.db.transaction().execute(async (trx) => {
      // a deferred BEGIN would have read before the other writer committed, then failed on the write
      const seen = (await trx.selectFrom('roles').select('name').execute()).map((r) => r.name);
      await trx.insertInto('roles').values({ name: 'second', created_at: 2 }).execute();
      return seen;
    });
    await sleep(30);
    other.exec('commit');
    expect(await tx).toEqual(['first']);
    expect(await roles()).toEqual(['first', 'second']);
  });

  it('gives up with SQLITE_BUSY after the busy timeout, and the store keeps working', async () => {
    other.exec('begin immediate');
    const started = Date.now();
    const error = await store.db.insertInto('roles').values({ name: 'a', created_at: 1 }).execute().catch((e: unknown) => e);
    expect(isBusy(error)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    const tx = await store.db.transaction().execute(() => Promise.resolve('ran')).catch((e: unknown) => e);
    expect(isBusy(tx)).toBe(true);
    other.exec('rollback');
    await store.db.insertInto('roles').values({ name: 'b', created_at: 1 }).execute();
    expect(await roles()).toEqual(['b']);
  });

  it('hands the connection out in arrival order', async () => {
    other.exec('begin immediate');
    const order: number[] = [];
    const all = Array.from({ length: 20 }, (_, i) =>
      store.db.transaction().execute(async (trx) => {
        await trx.insertInto('roles').values({ name: `r${String(i).padStart(2, '0')}`, created_at: i }).execute();
        order.push(i);
      }),
    );
    await sleep(20);
    other.exec('commit');
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('rolls a failed transaction back and leaves the connection usable', async () => {
    await expect(
      store.db.transaction().execute(async (trx) => {
        await trx.insertInto('roles').values({ name: 'x', created_at: 1 }).execute();
        await trx.insertInto('roles').values({ name: 'x', created_at: 1 }).execute(); // primary key
      }),
    ).rejects.toThrow(/UNIQUE/);
    expect(await roles()).toEqual([]);
    await store.db.insertInto('roles').values({ name: 'y', created_at: 1 }).execute();
    expect(await roles()).toEqual(['y']);
  });
});
