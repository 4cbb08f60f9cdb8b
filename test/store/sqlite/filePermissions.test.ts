// The SQLite store holds password hashes, the audit trail and encrypted signing keys: its folder is
// created 0700 and its files (.db, -wal, -shm) 0600 whatever the umask, an existing store open to
// other users is tightened, and the server warns once at start (INTERFACE.md "Operations").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { type Store, migrate, openStore } from '../../../src/store/database.js';
import { LogCapture } from '../../helpers.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;

let dirs: string[] = [];
let stores: Store[] = [];
let writes = 0;
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-perms-'));
  dirs.push(d);
  return d;
}

async function open(file: string, logs?: LogCapture): Promise<Store> {
  const store = openStore(file, logs ? { logger: createLogger('info', logs) } : {});
  stores.push(store);
  await migrate(store);
  // a write, so that the WAL and its index exist
  await sql`insert into roles (name, created_at) values (${`reader-${++writes}`}, 0)`.execute(store.db);
  return store;
}

async function withUmask<T>(umask: number, run: () => Promise<T>): Promise<T> {
  const before = process.umask(umask);
  try {
    return await run();
  } finally {
    process.umask(before);
  }
}

describe('the SQLite store on disk', () => {
  it.each(['022', '002', '000'])('creates its folders 0700 and its .db, -wal and -shm 0600 under umask %s', async (umask) => {
    const base = tempDir();
    const file = path.join(base, 'data', 'tollgate', 'tollgate.db');
    await withUmask(parseInt(umask, 8), async () => {
      await open(file);
    });
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
    expect(fs.existsSync(`${file}-shm`)).toBe(true);
    expect(mode(path.join(base, 'data'))).toBe(0o700);
    expect(mode(path.dirname(file))).toBe(0o700);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect({ file: path.basename(f), mode: mode(f).toString(8) }).toEqual({ file: path.basename(f), mode: '600' });
    // the folder it was put in was there before: not ours to change
    expect(mode(base)).toBe(0o700);
  });

  it('tightens an existing store readable by others to 0600 and warns once, naming the paths and modes', async () => {
    const dir = path.join(tempDir(), 'data');
    const file = path.join(dir, 'tollgate.db');
    await (await open(file)).close();
    stores = [];
    // as an older Tollgate (or a copy with cp) left it
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(`${file}-wal`, '');
    fs.chmodSync(`${file}-wal`, 0o644);

    const logs = new LogCapture();
    await open(file, logs);
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(`${file}-shm`)).toBe(0o600);
    // the folder is reported, not changed: it may be shared on purpose
    expect(mode(dir)).toBe(0o755);
    const warnings = logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; paths?: unknown }).filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/readable by other users/);
    expect(warnings[0]?.paths).toEqual([
      { path: dir, mode: '0755', action: 'left' },
      { path: file, mode: '0644', action: 'tightened' },
      { path: `${file}-wal`, mode: '0644', action: 'tightened' },
    ]);
    // what is in the store never reaches the log
    expect(logs.text).not.toContain('reader');
  });

  it('says nothing about a store that is already private', async () => {
    const file = path.join(tempDir(), 'tollgate.db');
    await (await open(file)).close();
    stores = [];
    const logs = new LogCapture();
    await open(file, logs);
    expect(logs.lines).toEqual([]);
  });

  it('leaves :memory: alone', async () => {
    const cwd = fs.readdirSync(process.cwd());
    const store = await open(':memory:', new LogCapture());
    expect(store.location).toBe(':memory:');
    expect(fs.readdirSync(process.cwd())).toEqual(cwd);
  });
});
