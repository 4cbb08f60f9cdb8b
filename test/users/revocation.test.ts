// User-wide revocation: disabling a user, changing their password or logging them out revokes
// every refresh family they hold and denies every access token issued up to now (a `sub` entry
// with issued_before = now), through the service and through the CLI against a shared store.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seconds } from '../../src/clock.js';
import { FakeClock, PASSWORD, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';

type Creds = { client_id: string; client_secret?: string };
type Tokens = { access_token: string; refresh_token: string };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NEW_PASSWORD = 'a different long passphrase';

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  // the child gets only what it needs: no TOLLGATE_* settings leak in from the test runner
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'tollgate'), ...args], { cwd: ROOT, env: { ...base, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function fixtures(get: () => TestApp) {
  const clients: { web: Creds; api: Creds } = { web: { client_id: '' }, api: { client_id: '' } };
  return {
    clients,
    async setup() {
      clients.web = await get().addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api' });
      clients.api = await get().addClient('todo-api', { grants: ['client_credentials'] });
    },
    async signIn(username = 'alice', password = PASSWORD): Promise<Tokens> {
      const res = await passwordGrant(get(), clients.web, username, password);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as Tokens;
    },
    async active(token: string): Promise<boolean> {
      const res = await get().request.post('/introspect').set('Authorization', basic(clients.api)).type('form').send({ token });
      expect(res.status).toBe(200);
      return res.body.active as boolean;
    },
    async subEntries() {
      const res = await get().request.get('/deny-list').set('Authorization', basic(clients.api));
      return (res.body.entries as Array<{ type: string; value: string; issued_before?: number; expires_at: number }>).filter((e) => e.type === 'sub');
    },
  };
}

describe('user-wide revocation (UserService)', () => {
  let t: TestApp;
  let clock: FakeClock;
  let alice: string;
  const f = fixtures(() => t);

  beforeEach(async () => {
    t = await createTestApp();
    clock = t.clock as FakeClock;
    alice = await t.addUser('alice');
    await t.addUser('bob');
    await f.setup();
  });
  afterEach(() => t.close());

  /** Checks what every user-wide revocation promises, for tokens issued before it. */
  async function expectEverythingRevoked(before: Tokens[], at: number) {
    for (const tokens of before) {
      expect(await f.active(tokens.access_token)).toBe(false);
      expect(await f.active(tokens.refresh_token)).toBe(false);
      expect((await refreshGrant(t, f.clients.web, tokens.refresh_token)).body.error).toBe('invalid_grant');
    }
    const window = await t.app.services.horizon.windowSeconds();
    expect(await f.subEntries()).toEqual([{ type: 'sub', value: alice, issued_before: at, expires_at: at + window }]);
  }

  describe('users disable', () => {
    it('denies the user\'s access tokens issued up to now and revokes every refresh family', async () => {
      const sessions = [await f.signIn(), await f.signIn()];
      clock.advance(10);
      await t.app.services.users.setEnabled('alice', false);
      await expectEverythingRevoked(sessions, seconds(clock.now()));
    });

    it('refuses the disabled user\'s sign-in', async () => {
      await t.app.services.users.setEnabled('alice', false);
      clock.advance(1);
      const res = await passwordGrant(t, f.clients.web, 'alice');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });

    it('lets a re-enabled user sign in again: a token issued a second after the entry is active', async () => {
      const old = await f.signIn();
      await t.app.services.users.setEnabled('alice', false);
      await t.app.services.users.setEnabled('alice', true);
      // issued in the same second as the entry: denied (fail closed, INTERFACE.md)
      const sameSecond = await f.signIn();
      expect(await f.active(sameSecond.access_token)).toBe(false);
      clock.advance(1);
      const fresh = await f.signIn();
      expect(await f.active(fresh.access_token)).toBe(true);
      expect(await f.active(fresh.refresh_token)).toBe(true);
      expect((await refreshGrant(t, f.clients.web, fresh.refresh_token)).status).toBe(200);
      expect(await f.active(old.access_token)).toBe(false);
    });

    it('leaves other users\' tokens alone', async () => {
      const bobs = await f.signIn('bob');
      await t.app.services.users.setEnabled('alice', false);
      expect(await f.active(bobs.access_token)).toBe(true);
      expect(await f.active(bobs.refresh_token)).toBe(true);
    });

    it('enabling an enabled user adds no entry', async () => {
      await t.app.services.users.setEnabled('alice', true);
      expect(await f.subEntries()).toEqual([]);
    });

    it('fails for an unknown user and adds no entry', async () => {
      await expect(t.app.services.users.setEnabled('nobody', false)).rejects.toThrow(/no user nobody/);
      expect(await f.subEntries()).toEqual([]);
    });
  });

  describe('users set-password', () => {
    it('revokes everything issued before, refuses the old password and accepts the new one', async () => {
      const old = await f.signIn();
      clock.advance(5);
      await t.app.services.users.setPassword('alice', NEW_PASSWORD);
      await expectEverythingRevoked([old], seconds(clock.now()));
      clock.advance(1);
      expect((await passwordGrant(t, f.clients.web, 'alice', PASSWORD)).body.error).toBe('invalid_grant');
      const fresh = await f.signIn('alice', NEW_PASSWORD);
      expect(await f.active(fresh.access_token)).toBe(true);
    });

    it('refuses a password that is too weak and revokes nothing', async () => {
      const old = await f.signIn();
      await expect(t.app.services.users.setPassword('alice', 'short')).rejects.toThrow();
      expect(await f.active(old.access_token)).toBe(true);
      expect(await f.subEntries()).toEqual([]);
    });
  });

  describe('users logout', () => {
    it('revokes every refresh family and denies the access tokens, and the user may sign in again', async () => {
      const sessions = [await f.signIn(), await f.signIn()];
      clock.advance(3);
      expect(await t.app.services.users.logout('alice')).toEqual({ families: 2 });
      await expectEverythingRevoked(sessions, seconds(clock.now()));
      clock.advance(1);
      const fresh = await f.signIn();
      expect(await f.active(fresh.access_token)).toBe(true);
    });

    it('counts only the families it revoked', async () => {
      await f.signIn();
      await t.app.services.users.logout('alice');
      clock.advance(1);
      expect(await t.app.services.users.logout('alice')).toEqual({ families: 0 });
    });

    it('records user.logout in the audit trail', async () => {
      await f.signIn();
      await t.app.services.users.logout('alice');
      const events = await t.store.db.selectFrom('audit_events').selectAll().where('type', '=', 'user.logout').execute();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ username: 'alice', user_id: alice });
    });
  });
});

describe('tollgate users logout (a separate process on the same store)', () => {
  let dir: string;
  let t: TestApp;
  let alice: string;
  const f = fixtures(() => t);

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-users-'));
    // the CLI stamps entries with the real time, so this app's clock starts there too
    t = await createTestApp({ clock: new FakeClock(Date.now()), config: { database: { url: path.join(dir, 'tollgate.db') } } });
    alice = await t.addUser('alice');
    await t.addUser('bob');
    await f.setup();
  });
  afterEach(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) => cli([...args, '--database', path.join(dir, 'tollgate.db')], { TOLLGATE_KEY_ENCRYPTION_KEY: t.config.keys.encryptionKey ?? '' });

  it('revokes the user\'s families and denies their access tokens in the running server', async () => {
    const tokens = await f.signIn();
    const bobs = await f.signIn('bob');
    const { iat } = decodeJwt(tokens.access_token).payload as { iat: number };

    const result = await run('users', 'logout', 'alice', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ username: 'alice', revoked_families: 1 });

    // the refresh family is gone at once: the store is the source of truth
    expect(await f.active(tokens.refresh_token)).toBe(false);
    expect((await refreshGrant(t, f.clients.web, tokens.refresh_token)).body.error).toBe('invalid_grant');
    // the access token, once the server syncs its deny list (the background job does this every 250 ms)
    await t.app.services.denyList.sync();
    expect(await f.active(tokens.access_token)).toBe(false);
    const [entry] = await f.subEntries();
    expect(entry).toMatchObject({ type: 'sub', value: alice });
    expect(entry?.issued_before).toBeGreaterThanOrEqual(iat);
    expect(await f.active(bobs.access_token)).toBe(true);
  });

  it('fails with one line on stderr for an unknown user, and changes nothing', async () => {
    const tokens = await f.signIn();
    const result = await run('users', 'logout', 'nobody');
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/nobody/);
    await t.app.services.denyList.sync();
    expect(await f.active(tokens.access_token)).toBe(true);
    expect(await f.subEntries()).toEqual([]);
  });
});
