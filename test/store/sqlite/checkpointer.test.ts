// WAL checkpoints on their own thread (src/store/sqlite/checkpointer.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAFETY_NET_PAGES, startCheckpointer } from '../../../src/store/sqlite/checkpointer.js';
import { migrate, openStore } from '../../../src/store/database.js';

describe('the checkpointer thread', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-ckpt-'));
    file = path.join(dir, 'db.sqlite');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('copies the WAL back into the database while the writer never checkpoints itself', async () => {
    const writer = new SQLite(file);
    writer.pragma('journal_mode = WAL');
    writer.pragma('wal_autocheckpoint = 0');
    writer.exec('create table t (x integer)');
    const insert = writer.prepare('insert into t values (?)');
    for (let i = 0; i < 200; i++) insert.run(i);
    const rows: { busy: number; log: number; checkpointed: number }[] = [];
    const checkpointer = startCheckpointer(file, { intervalMs: 20, onCheckpoint: (row) => rows.push(row) });
    try {
      await expect.poll(() => rows.some((r) => r.log > 0 && r.checkpointed === r.log), { timeout: 5000 }).toBe(true);
    } finally {
      await checkpointer.stop();
      writer.close();
    }
    // the database file alone now holds the rows (the WAL's frames were copied back)
    const copy = path.join(dir, 'copy.sqlite');
    fs.copyFileSync(file, copy);
    const reader = new SQLite(copy, { readonly: true });
    expect(reader.prepare('select count(*) as n from t').get()).toEqual({ n: 200 });
    reader.close();
  });

  it('is what a server store uses: its own autocheckpoint only a safety net; a CLI store checkpoints as SQLite does', async () => {
    const server = openStore(file, { backgroundCheckpoints: true });
    const cli = openStore(file);
    try {
      await migrate(server);
      const pages = async (store: typeof server) => (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db)).rows[0]?.wal_autocheckpoint;
      expect(await pages(server)).toBe(SAFETY_NET_PAGES);
      expect(await pages(cli)).toBe(1000);
    } finally {
      await cli.close();
      await server.close(); // ends the thread (a hang here fails the test by timeout)
    }
  });

  it('stops the thread when asked twice, and after the database file is gone', async () => {
    const db = new SQLite(file);
    db.pragma('journal_mode = WAL');
    db.close();
    const checkpointer = startCheckpointer(file, { intervalMs: 10 });
    fs.rmSync(file);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await Promise.all([checkpointer.stop(), checkpointer.stop()]);
  });
});
