// Encryption at rest: private signing keys are sealed with AES-256-GCM under the key-encryption key
// (TOLLGATE_KEY_ENCRYPTION_KEY, else keys/master.key). A copied database without that key holds no
// usable private key, and a wrong key stops the server before it listens instead of minting
// garbage tokens.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { KeyEncryptionError, decryptPrivateKey, encryptPrivateKey, loadKeyEncryptionKey } from '../../src/keys/encryption.js';
import { createLogger } from '../../src/logger.js';
import { openStore } from '../../src/store/database.js';
import { FakeClock, type TestApp, createTestApp, keyManager, testConfig } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const newKek = () => crypto.randomBytes(32);
const b64 = (key: Buffer) => key.toString('base64url');

/** Every private member of a JWK, in every encoding a careless store might leave it in. */
function privateMaterial(jwk: JWK): string[] {
  const out: string[] = [];
  for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) {
    const v = jwk[m];
    if (typeof v !== 'string') continue;
    const bytes = Buffer.from(v, 'base64url');
    out.push(v, bytes.toString('base64'), bytes.toString('hex'));
  }
  return out;
}

describe('private keys at rest', () => {
  let t: TestApp;
  let kek: Buffer;
  beforeEach(async () => {
    t = await createTestApp();
    kek = Buffer.from(t.config.keys.encryptionKey!, 'base64url');
  });
  afterEach(() => t.close());

  it('stores no private key material in private_jwk_enc: no "d", no JSON, not the private scalar', async () => {
    const rows = await t.store.db.selectFrom('signing_keys').select(['kid', 'public_jwk', 'private_jwk_enc']).execute();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const raw = row.private_jwk_enc;
      expect(() => JSON.parse(raw)).toThrow();
      expect(raw).not.toContain('"d"');
      expect(raw).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      // the key is in there, sealed: the KEK opens it and the scalar is nowhere in the column
      const jwk = JSON.parse(decryptPrivateKey(kek, row.kid, raw)) as JWK;
      expect(typeof jwk.d).toBe('string');
      for (const secret of privateMaterial(jwk)) expect(raw).not.toContain(secret);
      // and the public column is only public
      const pub = JSON.parse(row.public_jwk) as JWK;
      expect(pub.d).toBeUndefined();
      for (const secret of privateMaterial(jwk)) expect(row.public_jwk).not.toContain(secret);
    }
  });

  it('yields nothing usable to someone who copied the database without the key-encryption key', async () => {
    const [row] = await t.store.db.selectFrom('signing_keys').selectAll().where('state', '=', 'active').execute();
    expect(() => decryptPrivateKey(newKek(), row!.kid, row!.private_jwk_enc)).toThrow(KeyEncryptionError);
  });

  it('does not decrypt a ciphertext moved to another kid (the kid is authenticated data)', async () => {
    const [active] = await t.app.services.keys.repo.byState('active');
    const [next] = await t.app.services.keys.repo.byState('next');
    expect(() => decryptPrivateKey(kek, next!.kid, active!.private_jwk_enc)).toThrow(KeyEncryptionError);
    expect(() => decryptPrivateKey(kek, active!.kid, active!.private_jwk_enc)).not.toThrow();
  });

  it('does not decrypt a tampered or truncated ciphertext', () => {
    const sealed = encryptPrivateKey(kek, 'kid-1', '{"d":"secret"}');
    const [v, iv, body] = sealed.split('.') as [string, string, string];
    const flipped = Buffer.from(body, 'base64url');
    flipped[0]! ^= 1;
    expect(() => decryptPrivateKey(kek, 'kid-1', `${v}.${iv}.${b64(flipped)}`)).toThrow(KeyEncryptionError);
    expect(() => decryptPrivateKey(kek, 'kid-1', `${v}.${iv}.${body.slice(0, 10)}`)).toThrow(KeyEncryptionError);
    expect(() => decryptPrivateKey(kek, 'kid-1', `v2.${iv}.${body}`)).toThrow(/unknown encryption format/);
    expect(() => decryptPrivateKey(kek, 'kid-1', 'garbage')).toThrow(KeyEncryptionError);
    expect(decryptPrivateKey(kek, 'kid-1', sealed)).toBe('{"d":"secret"}');
  });

  it('seals the same key differently each time (a fresh IV per encryption)', () => {
    expect(encryptPrivateKey(kek, 'k', 'x')).not.toBe(encryptPrivateKey(kek, 'k', 'x'));
  });
});

describe('the database file', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase('sqlite');
  });
  afterEach(() => db.drop());

  it('holds no private scalar anywhere in its bytes', async () => {
    const kek = newKek();
    const store = db.open();
    const app = await createApp({ config: testConfig(), store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false, kek });
    const rows = await app.services.keys.repo.all();
    await app.close();
    await store.close(); // the last connection checkpoints the WAL into the file
    const files = fs.readdirSync(path.dirname(db.url)).map((f) => fs.readFileSync(path.join(path.dirname(db.url), f)));
    for (const row of rows) {
      const jwk = JSON.parse(decryptPrivateKey(kek, row.kid, row.private_jwk_enc)) as JWK;
      const scalar = Buffer.from(jwk.d!, 'base64url');
      for (const bytes of files) {
        expect(bytes.includes(scalar)).toBe(false);
        for (const text of privateMaterial(jwk)) expect(bytes.includes(Buffer.from(text))).toBe(false);
      }
    }
  });
});

describe('a wrong key-encryption key', () => {
  let db: TestDatabase;
  let kek: Buffer;
  beforeEach(async () => {
    db = await createTestDatabase();
    kek = newKek();
    const store = db.open();
    const app = await createApp({ config: testConfig(), store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false, kek });
    await app.close();
    await store.close();
  });
  afterEach(() => db.drop());

  it('makes createApp reject with a KeyEncryptionError naming TOLLGATE_KEY_ENCRYPTION_KEY', async () => {
    const store = db.open();
    try {
      // as TOLLGATE_KEY_ENCRYPTION_KEY sets it: config keys.encryptionKey
      const config = testConfig({ keys: { encryptionKey: b64(newKek()) } });
      const failure = createApp({ config, store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false });
      await expect(failure).rejects.toThrow(KeyEncryptionError);
      await expect(failure).rejects.toThrow(/TOLLGATE_KEY_ENCRYPTION_KEY/);
      // nothing was written: the store still holds the two keys it had, and the right key opens them
      expect(await store.db.selectFrom('signing_keys').select('kid').execute()).toHaveLength(2);
      const ok = await createApp({ config: testConfig(), store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false, kek });
      expect(ok.services.keyring.hasActiveKey()).toBe(true);
      await ok.close();
    } finally {
      await store.close();
    }
  });

  it('makes key changes from the CLI fail instead of storing keys the server cannot open', async () => {
    const store = db.open();
    try {
      const wrong = keyManager(store.db, newKek(), new FakeClock());
      await expect(wrong.generate('ES256')).rejects.toThrow(/TOLLGATE_KEY_ENCRYPTION_KEY/);
      await expect(wrong.rotate('ES256')).rejects.toThrow(KeyEncryptionError);
      const states = (await store.db.selectFrom('signing_keys').select('state').execute()).map((r) => r.state).sort();
      expect(states).toEqual(['active', 'next']);
    } finally {
      await store.close();
    }
  });

  it('refuses to activate a next key stored under another key-encryption key', async () => {
    const store = db.open();
    try {
      const [next] = await store.db.selectFrom('signing_keys').selectAll().where('state', '=', 'next').execute();
      // a row sealed under some other KEK (as an older CLI without the check could have written)
      const other = encryptPrivateKey(newKek(), next!.kid, decryptPrivateKey(kek, next!.kid, next!.private_jwk_enc));
      await store.db.updateTable('signing_keys').set({ private_jwk_enc: other }).where('kid', '=', next!.kid).execute();
      const keys = keyManager(store.db, kek, new FakeClock());
      await expect(keys.rotate('ES256')).rejects.toThrow(KeyEncryptionError);
      expect((await keys.repo.byState('active'))[0]?.kid).not.toBe(next!.kid);
    } finally {
      await store.close();
    }
  });

  it('stops the server when a row was swapped onto another kid', async () => {
    const store = db.open();
    try {
      const rows = await store.db.selectFrom('signing_keys').selectAll().execute();
      const active = rows.find((r) => r.state === 'active')!;
      const next = rows.find((r) => r.state === 'next')!;
      await store.db.updateTable('signing_keys').set({ private_jwk_enc: next.private_jwk_enc }).where('kid', '=', active.kid).execute();
      await expect(createApp({ config: testConfig(), store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false, kek })).rejects.toThrow(KeyEncryptionError);
    } finally {
      await store.close();
    }
  });
});

describe('node dist/src/main.js on an existing store', () => {
  let dir: string;
  let file: string;
  let kek: Buffer;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-kek-'));
    file = path.join(dir, 'tollgate.db');
    kek = newKek();
    const store = openStore(file);
    const app = await createApp({ config: testConfig(), store, clock: new FakeClock(), logger: createLogger('silent'), jobs: false, kek });
    await app.close();
    await store.close();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function start(key: string): Promise<{ code: number | null; stdout: string; stderr: string; listened: boolean }> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) env[k] = v;
    Object.assign(env, { TOLLGATE_DATABASE: file, TOLLGATE_KEY_ENCRYPTION_KEY: key, TOLLGATE_PORT: '0', TOLLGATE_HOST: '127.0.0.1', TOLLGATE_LOG_LEVEL: 'info' });
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/main.js')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let listened = false;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        // the right key: it listens; stop it, that is all this control case needs
        if (!listened && stdout.includes('tollgate listening')) {
          listened = true;
          child.kill('SIGTERM');
        }
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr, listened }));
    });
  }

  it('exits non-zero before listening, with one stderr line naming TOLLGATE_KEY_ENCRYPTION_KEY', async () => {
    const r = await start(b64(newKek()));
    expect(r.listened).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tollgate: .*TOLLGATE_KEY_ENCRYPTION_KEY/);
    expect(r.stdout).not.toContain('listening');
  });

  it('exits with status 2 and one line when TOLLGATE_KEY_ENCRYPTION_KEY is not a 32-byte base64url key', async () => {
    const r = await start('not-a-key');
    expect(r.listened).toBe(false);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/keys\.encryptionKey \(from TOLLGATE_KEY_ENCRYPTION_KEY\)/);
    expect(lines[0]).not.toContain('not-a-key'); // a key, even a wrong one, is not echoed
  });

  it('starts with the right key (the control case)', async () => {
    const r = await start(b64(kek));
    expect(r.listened).toBe(true);
    expect(r.stderr).toBe('');
  });
});

describe('the key file (no TOLLGATE_KEY_ENCRYPTION_KEY)', () => {
  let dir: string;
  let keyFile: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-masterkey-'));
    keyFile = path.join(dir, 'keys', 'master.key');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const withKeyFile = (overrides: Record<string, unknown> = {}) => ({ keys: { encryptionKey: undefined, encryptionKeyFile: keyFile, ...overrides } });

  it('creates keys/master.key with mode 0600 on first start and reuses it afterwards', async () => {
    const db = await createTestDatabase();
    try {
      const first = await createTestApp({ store: db.open(), config: withKeyFile() });
      await first.close();
      await first.store.close();
      const stat = fs.statSync(keyFile);
      expect(stat.mode & 0o777).toBe(0o600);
      const text = fs.readFileSync(keyFile, 'utf8');
      expect(text).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      expect(Buffer.from(text.trim(), 'base64url')).toHaveLength(32);

      // the second start reads the same file and opens the keys the first one stored
      const second = await createTestApp({ store: db.open(), config: withKeyFile() });
      expect(second.app.services.keyring.hasActiveKey()).toBe(true);
      expect(fs.readFileSync(keyFile, 'utf8')).toBe(text);
      await second.close();
      await second.store.close();
    } finally {
      await db.drop();
    }
  });

  it('neither reads nor creates the file when the key comes from the environment', () => {
    const key = loadKeyEncryptionKey(b64(newKek()), keyFile);
    expect(key).toHaveLength(32);
    expect(fs.existsSync(keyFile)).toBe(false);
  });

  it('refuses a key file that does not hold a 32-byte key', () => {
    fs.mkdirSync(path.dirname(keyFile), { recursive: true });
    fs.writeFileSync(keyFile, 'short\n', { mode: 0o600 });
    expect(() => loadKeyEncryptionKey(undefined, keyFile)).toThrow(KeyEncryptionError);
    expect(() => loadKeyEncryptionKey(undefined, keyFile)).toThrow(keyFile);
  });

  it('refuses a key file that other users can read, naming the fix', () => {
    fs.mkdirSync(path.dirname(keyFile), { recursive: true });
    fs.writeFileSync(keyFile, `${b64(newKek())}\n`, { mode: 0o644 });
    fs.chmodSync(keyFile, 0o644);
    expect(() => loadKeyEncryptionKey(undefined, keyFile)).toThrow(/readable by other users \(mode 644\); run chmod 600/);
    fs.chmodSync(keyFile, 0o600);
    expect(loadKeyEncryptionKey(undefined, keyFile)).toHaveLength(32);
  });

  it('refuses an encoded key that is not 32 bytes', () => {
    expect(() => loadKeyEncryptionKey(b64(crypto.randomBytes(16)), keyFile)).toThrow(/TOLLGATE_KEY_ENCRYPTION_KEY must be 32 bytes/);
  });
});
