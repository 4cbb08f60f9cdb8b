// Transport (issue 5 §5): an http:// issuer only on loopback, and trustProxy alone decides whether
// X-Forwarded-For is believed for the client's IP (the throttle's and the audit trail's).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { type TestApp, createTestApp, passwordGrant, testConfig } from '../helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('issuer transport', () => {
  it.each(['http://localhost:3000', 'http://localhost', 'http://127.0.0.1:8080', 'http://127.3.2.1', 'http://[::1]:3000', 'http://LOCALHOST:3000', 'https://auth.example.com', 'https://auth.example.com/tenant'])(
    'accepts %s',
    (issuer) => {
      expect(testConfig({ issuer }).issuer).toBe(issuer);
    },
  );

  it.each([
    'http://auth.example.com',
    'http://10.0.0.1',
    'http://0.0.0.0:3000',
    'http://localhost.example.com',
    'http://127.0.0.1.nip.io',
    'http://localhost@evil.example',
    'http://128.0.0.1',
    'ftp://localhost',
    'auth.example.com',
  ])('refuses %s with one line naming issuer', (issuer) => {
    let error: unknown;
    try {
      testConfig({ issuer });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^config: invalid issuer/);
    expect((error as Error).message).not.toContain('\n');
  });

  it('names TOLLGATE_ISSUER when the variable set the http:// issuer', () => {
    expect(() => loadConfig({ env: { TOLLGATE_ISSUER: 'http://auth.example.com' } })).toThrow(/issuer \(from TOLLGATE_ISSUER\).*https:\/\//);
  });

  it('stops the CLI with exit status 2 and one line on stderr', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-transport-'));
    try {
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [path.join(ROOT, 'bin', 'tollgate'), 'keys', 'list', '--database', path.join(dir, 'db.sqlite')],
          { env: { ...process.env, TOLLGATE_ISSUER: 'http://auth.example.com', TOLLGATE_CONFIG: '' } },
          (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/issuer.*TOLLGATE_ISSUER/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('trustProxy', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0)) await close();
  });

  async function setup(trustProxy: boolean): Promise<{ t: TestApp; signIn: (headers: Record<string, string>) => Promise<void> }> {
    const t = await createTestApp({ config: { server: { trustProxy } } });
    cleanup.push(() => t.close());
    await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password'] });
    return {
      t,
      async signIn(headers) {
        const res = await passwordGrant(t, web, 'alice').set(headers);
        expect(res.status).toBe(200);
      },
    };
  }

  async function lastIp(t: TestApp): Promise<string | null> {
    const row = await t.store.db.selectFrom('audit_events').select('ip').where('type', '=', 'sign_in.success').orderBy('id', 'desc').executeTakeFirstOrThrow();
    return row.ip;
  }

  it('is off by default', () => {
    expect(testConfig().server.trustProxy).toBe(false);
  });

  it('when on, takes the client IP from X-Forwarded-For (the entry the proxy appended)', async () => {
    const { t, signIn } = await setup(true);
    expect(t.app.koa.proxy).toBe(true);
    await signIn({ 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' });
    expect(await lastIp(t)).toBe('203.0.113.7');
    await signIn({ 'X-Forwarded-For': '192.0.2.66, 203.0.113.8' });
    expect(await lastIp(t)).toBe('203.0.113.8');
  });

  it('when on and no proxy header is sent, falls back to the socket address', async () => {
    const { t, signIn } = await setup(true);
    await signIn({});
    expect(await lastIp(t)).toMatch(/127\.0\.0\.1|::1/);
  });

  it('when off, ignores X-Forwarded-For and X-Forwarded-Proto entirely', async () => {
    const { t, signIn } = await setup(false);
    expect(t.app.koa.proxy).toBe(false);
    await signIn({ 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' });
    expect(await lastIp(t)).toMatch(/127\.0\.0\.1|::1/);
  });
});
