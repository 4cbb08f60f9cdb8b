// `tollgate keys …` as an operator runs it: the built CLI in a child process against a temporary
// store. Success prints the result (JSON with --json) and exits 0; every failure is one line on
// stderr and a non-zero exit.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JWK, type JSONWebKeySet, calculateJwkThumbprint } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import { FakeClock, createTestApp, listen, testConfig } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'tollgate');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface KeyJson {
  kid: string;
  alg: string;
  state: string;
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
  removed_at: string | null;
}

// every command is a fresh node process (about a second each on a busy machine)
describe('tollgate keys', { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let dir: string;
  let kek: string;

  beforeEach(async () => {
    db = await createTestDatabase();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-keys-'));
    kek = crypto.randomBytes(32).toString('base64url');
    // a store as the server leaves it on first start: one active key, one next key
    const store = db.open();
    const app = await createApp({ config: testConfig({ keys: { encryptionKey: kek } }), store, clock: new FakeClock(Date.now()), logger: createLogger('silent'), jobs: false });
    await app.close();
    await store.close();
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await db.drop();
  });

  function tollgate(args: string[], env: Record<string, string> = {}): Promise<Run> {
    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) clean[k] = v;
    Object.assign(clean, { TOLLGATE_KEY_ENCRYPTION_KEY: kek, TOLLGATE_LOG_LEVEL: 'error' }, env);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, '--database', db.url, ...args], { cwd: dir, env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  async function ok(args: string[]): Promise<Run> {
    const r = await tollgate(args);
    expect(r.stderr, `${args.join(' ')}: ${r.stderr}`).toBe('');
    expect(r.code, args.join(' ')).toBe(0);
    return r;
  }

  async function json<T>(args: string[]): Promise<T> {
    return JSON.parse((await ok([...args, '--json'])).stdout) as T;
  }

  /** A failure: non-zero exit, nothing on stdout, exactly one line on stderr matching `pattern`. */
  async function fails(args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<void> {
    const r = await tollgate(args, env);
    expect(r.code, `${args.join(' ')} should fail`).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  }

  const list = () => json<KeyJson[]>(['keys', 'list']);
  const byState = async (state: string) => (await list()).filter((k) => k.state === state);
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
  };

  it('list --json shows every key with kid, alg, state and its dates', async () => {
    const keys = await list();
    expect(keys).toHaveLength(2);
    const active = keys.find((k) => k.state === 'active')!;
    const next = keys.find((k) => k.state === 'next')!;
    expect(Object.keys(active).sort()).toEqual(['activated_at', 'alg', 'created_at', 'kid', 'removed_at', 'retired_at', 'state']);
    expect(active).toMatchObject({ alg: 'ES256', retired_at: null, removed_at: null });
    expect(new Date(active.created_at).toISOString()).toBe(active.created_at);
    expect(new Date(active.activated_at!).toISOString()).toBe(active.activated_at);
    expect(next).toMatchObject({ alg: 'ES256', activated_at: null, retired_at: null });
    // without --json: a table with the same keys
    const text = (await ok(['keys', 'list'])).stdout;
    expect(text.split('\n')[0]).toMatch(/^KID\s+ALG\s+STATE\s+CREATED\s+ACTIVATED\s+RETIRED$/);
    expect(text).toContain(active.kid);
    expect(text).toContain(next.kid);
  });

  it('generate adds a next key, ES256 by default or the --alg asked for', async () => {
    const es = await json<KeyJson>(['keys', 'generate']);
    expect(es).toMatchObject({ alg: 'ES256', state: 'next', activated_at: null });
    for (const alg of ['EdDSA', 'RS256', 'PS256']) expect(await json<KeyJson>(['keys', 'generate', '--alg', alg])).toMatchObject({ alg, state: 'next' });
    const next = await byState('next');
    expect(next).toHaveLength(5);
    const published = JSON.parse((await ok(['keys', 'jwks'])).stdout) as JSONWebKeySet;
    const rsa = published.keys.find((k) => k.alg === 'RS256')!;
    expect(Buffer.from(rsa.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
    expect((await ok(['keys', 'generate', '--alg', 'EdDSA'])).stdout).toMatch(/^generated EdDSA key \S+ \(next/);
  });

  it('generate refuses HS256 and unknown algorithms', async () => {
    await fails(['keys', 'generate', '--alg', 'HS256'], /--alg must be one of ES256, EdDSA, RS256, PS256/);
    await fails(['keys', 'generate', '--alg', 'none'], /--alg must be one of/);
    expect(await list()).toHaveLength(2);
  });

  it('rotate promotes next, retires active and pre-publishes a new next key', async () => {
    const [active] = await byState('active');
    const [next] = await byState('next');
    const r = await json<{ retired: string; activated: string; next: string }>(['keys', 'rotate']);
    expect(r).toEqual({ retired: active!.kid, activated: next!.kid, next: expect.any(String) });
    const keys = await list();
    expect(keys.find((k) => k.kid === active!.kid)).toMatchObject({ state: 'retired', retired_at: expect.any(String) });
    expect(keys.find((k) => k.kid === next!.kid)).toMatchObject({ state: 'active', activated_at: expect.any(String) });
    expect(keys.find((k) => k.kid === r.next)).toMatchObject({ state: 'next' });
    const published = (JSON.parse((await ok(['keys', 'jwks'])).stdout) as JSONWebKeySet).keys.map((k) => k.kid);
    expect(published.sort()).toEqual([active!.kid, next!.kid, r.next].sort());
    expect((await ok(['keys', 'rotate'])).stdout).toMatch(/^rotated: \S+ is active, \S+ retired, \S+ is the next key\n$/);
    const audit = JSON.parse((await ok(['audit', '--type', 'key.rotated', '--json'])).stdout) as unknown[];
    expect(audit).toHaveLength(2);
  });

  it('rotate refuses when there is no next key to promote', async () => {
    const [next] = await byState('next');
    await ok(['keys', 'retire', next!.kid]);
    await fails(['keys', 'rotate'], /^tollgate: error: there is no next key to promote: run `tollgate keys generate`/);
    expect(await byState('active')).toHaveLength(1);
  });

  it('retire retires a next key and refuses the active key, unknown kids and keys already retired', async () => {
    const [active] = await byState('active');
    const [next] = await byState('next');
    expect(await json(['keys', 'retire', next!.kid])).toEqual({ kid: next!.kid, state: 'retired' });
    expect((await list()).find((k) => k.kid === next!.kid)).toMatchObject({ state: 'retired' });
    await fails(['keys', 'retire', active!.kid], /is the active key: run `tollgate keys rotate` instead/);
    await fails(['keys', 'retire', next!.kid], /is retired, not next/);
    await fails(['keys', 'retire', 'no-such-kid'], /no key no-such-kid/);
    await fails(['keys', 'retire'], /missing required argument/);
    expect(await byState('active')).toEqual([active]);
  });

  it('remove refuses the active key, asks for --force while a key may have live tokens, and removes with --force', async () => {
    const [active] = await byState('active');
    await fails(['keys', 'remove', active!.kid], /is the active key: rotate first/);
    await fails(['keys', 'remove', active!.kid, '--force'], /is the active key/);
    const { retired } = await json<{ retired: string }>(['keys', 'rotate']);
    await fails(['keys', 'remove', retired], /may still have live tokens; pass --force/);
    expect((await list()).find((k) => k.kid === retired)?.state).toBe('retired');
    expect(await json(['keys', 'remove', retired, '--force'])).toEqual({ kid: retired, state: 'removed' });
    expect((await list()).find((k) => k.kid === retired)).toMatchObject({ state: 'removed', removed_at: expect.any(String) });
    const published = (JSON.parse((await ok(['keys', 'jwks'])).stdout) as JSONWebKeySet).keys.map((k) => k.kid);
    expect(published).not.toContain(retired);
    await fails(['keys', 'remove', retired, '--force'], /already removed/);
    await fails(['keys', 'remove', 'no-such-kid', '--force'], /no key no-such-kid/);
  });

  it('remove takes a next key without --force: it never signed anything', async () => {
    const [next] = await byState('next');
    expect(await json(['keys', 'remove', next!.kid])).toEqual({ kid: next!.kid, state: 'removed' });
  });

  it('jwks prints the public JWK Set of the published keys, alg on each, no private members', async () => {
    const { retired } = await json<{ retired: string }>(['keys', 'rotate']);
    await ok(['keys', 'remove', retired, '--force']);
    const set = JSON.parse((await ok(['keys', 'jwks'])).stdout) as JSONWebKeySet;
    const published = (await list()).filter((k) => k.state !== 'removed');
    expect(set.keys.map((k) => k.kid).sort()).toEqual(published.map((k) => k.kid).sort());
    for (const key of set.keys) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(m);
    }
  });

  it('takes a kid that starts with "-" after `--` (an imported key keeps its thumbprint as kid)', async () => {
    let pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    let kid = await calculateJwkThumbprint(pair.publicKey.export({ format: 'jwk' }) as JWK);
    while (!kid.startsWith('-')) {
      pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      kid = await calculateJwkThumbprint(pair.publicKey.export({ format: 'jwk' }) as JWK);
    }
    const file = write('dash.pem', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(await json<KeyJson>(['keys', 'import', file])).toMatchObject({ kid });
    expect(JSON.parse((await ok(['keys', 'export-public', '--', kid])).stdout)).toMatchObject({ kid });
    expect(JSON.parse((await ok(['--json', 'keys', 'remove', '--', kid])).stdout)).toEqual({ kid, state: 'removed' });
  });

  it('never generates a kid that starts with "-"', async () => {
    for (let i = 0; i < 8; i++) expect((await json<KeyJson>(['keys', 'generate'])).kid).not.toMatch(/^-/);
  });

  it('import takes a PEM private key as a next key (kid = RFC 7638 thumbprint)', async () => {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = write('ec.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const imported = await json<KeyJson>(['keys', 'import', file]);
    const expectedKid = await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK);
    expect(imported).toMatchObject({ kid: expectedKid, alg: 'ES256', state: 'next' });
    const exported = JSON.parse((await ok(['keys', 'export-public', '--', expectedKid])).stdout) as JWK;
    expect(exported).toMatchObject({ ...publicKey.export({ format: 'jwk' }), kid: expectedKid, alg: 'ES256', use: 'sig' });
    // the same key twice is refused
    await fails(['keys', 'import', file], /already in the store/);
    // SEC1 and PKCS#1 PEMs too; an RSA key signs PS256 when asked
    const sec1 = write('sec1.pem', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString());
    expect(await json<KeyJson>(['keys', 'import', sec1])).toMatchObject({ alg: 'ES256', state: 'next' });
    const pkcs1 = write('rsa.pem', crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
    expect(await json<KeyJson>(['keys', 'import', pkcs1, '--alg', 'PS256'])).toMatchObject({ alg: 'PS256', state: 'next' });
  });

  it('import takes a private JWK, with its alg from the key type', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    const file = write('ed.jwk.json', JSON.stringify(privateKey.export({ format: 'jwk' })));
    const imported = await json<KeyJson>(['keys', 'import', file]);
    expect(imported).toMatchObject({ alg: 'EdDSA', state: 'next' });
    const set = JSON.parse((await ok(['keys', 'jwks'])).stdout) as JSONWebKeySet;
    expect(set.keys.find((k) => k.kid === imported.kid)).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(set.keys.find((k) => k.kid === imported.kid)).not.toHaveProperty('d');
  });

  it('import refuses garbage, public keys, RSA-1024, symmetric keys and missing files', async () => {
    await fails(['keys', 'import', write('garbage.txt', 'hello, world\n')], /neither a PEM private key nor a JWK/);
    await fails(['keys', 'import', write('broken.json', '{"kty": "EC",')], /neither a PEM private key nor valid JSON/);
    await fails(['keys', 'import', write('broken.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')], /not a readable private key/);
    const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await fails(['keys', 'import', write('public.pem', publicKey.export({ type: 'spki', format: 'pem' }).toString())], /not a readable private key/);
    await fails(['keys', 'import', write('public.jwk', JSON.stringify(publicKey.export({ format: 'jwk' })))], /no private part/);
    const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    await fails(['keys', 'import', write('rsa1024.pem', small.export({ type: 'pkcs8', format: 'pem' }).toString())], /RSA keys must have at least 2048 bits/);
    await fails(['keys', 'import', write('rsa1024.jwk', JSON.stringify(small.export({ format: 'jwk' })))], /at least 2048 bits/);
    await fails(['keys', 'import', write('hs.jwk', JSON.stringify({ kty: 'oct', k: crypto.randomBytes(32).toString('base64url') }))], /symmetric keys \(HS256\) are not accepted/);
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await fails(['keys', 'import', write('ec.pem', ec), '--alg', 'RS256'], /cannot sign RS256/);
    await fails(['keys', 'import', path.join(dir, 'missing.pem')], /cannot read .*missing\.pem: ENOENT/);
    expect(await list()).toHaveLength(2);
  });

  it('export-public prints one key\'s public JWK and refuses unknown kids', async () => {
    const [active] = await byState('active');
    const jwk = JSON.parse((await ok(['keys', 'export-public', active!.kid])).stdout) as JWK;
    expect(jwk).toMatchObject({ kid: active!.kid, alg: 'ES256', kty: 'EC', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    await fails(['keys', 'export-public', 'no-such-kid'], /no key no-such-kid/);
  });

  it('refuses key changes under the wrong TOLLGATE_KEY_ENCRYPTION_KEY, naming it', async () => {
    const wrong = { TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url') };
    await fails(['keys', 'rotate'], /^tollgate: .*TOLLGATE_KEY_ENCRYPTION_KEY/, wrong);
    await fails(['keys', 'generate'], /TOLLGATE_KEY_ENCRYPTION_KEY/, wrong);
    await fails(['keys', 'list'], /TOLLGATE_KEY_ENCRYPTION_KEY/, { TOLLGATE_KEY_ENCRYPTION_KEY: 'short' });
    const keys = await list();
    expect(keys.map((k) => k.state).sort()).toEqual(['active', 'next']);
  });

  it('reaches a running server without a restart: a CLI rotation shows in its JWKS and its tokens', async () => {
    const store = db.open();
    const t = await createTestApp({ store, clock: new FakeClock(Date.now()), jobs: true, config: { keys: { encryptionKey: kek, reloadIntervalMs: 50 } } });
    const server = await listen(t.app);
    try {
      const r = await json<{ next: string; activated: string }>(['keys', 'rotate']);
      let kids: string[] = [];
      // the server reloads on its own (keys.reloadIntervalMs); bounded wait, no timing asserted
      for (let i = 0; i < 100 && !kids.includes(r.next); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        kids = ((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet).keys.map((k) => k.kid!);
      }
      expect(kids).toContain(r.next);
      expect(t.app.services.keyring.signingKey().kid).toBe(r.activated);
    } finally {
      await server.close();
      await t.close();
      await store.close();
    }
  });
});
