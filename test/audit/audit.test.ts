// The audit trail (issue 5 §6): one row per security-relevant event — who, what, when, from which
// IP and client, never a secret — and `tollgate audit [--user] [--type] [--since] --json` printing
// the INTERFACE.md event shape {at, type, user?, client_id?, ip?, detail?}.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventJson } from '../../src/cli/audit.js';
import { parseSince } from '../../src/cli/audit.js';
import type { AuditEventRow } from '../../src/store/schema.js';
import { FakeClock, PASSWORD, type TestApp, basic, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IP = '203.0.113.10';
const DAY = 86_400;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(database: TestDatabase, kek: Buffer, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'tollgate'), ...args, '--database', database.url],
      { env: { ...process.env, TOLLGATE_KEY_ENCRYPTION_KEY: kek.toString('base64url'), TOLLGATE_CONFIG: '', TOLLGATE_DATABASE: '' } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type EventJson = AuditEventJson;

async function auditJson(database: TestDatabase, kek: Buffer, filters: string[] = []): Promise<EventJson[]> {
  const r = await cli(database, kek, ['audit', '--json', ...filters]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as EventJson[];
}

describe('audit trail', () => {
  let database: TestDatabase;
  const kek = crypto.randomBytes(32);
  const clock = new FakeClock();
  const day1 = clock.now();
  let t: TestApp;
  let aliceId: string;
  const secrets: string[] = [PASSWORD];
  const at: Record<string, number> = {};
  const sids: Record<string, string> = {};
  let revokedJti = '';
  let closeStore: () => Promise<void> = async () => {};

  beforeAll(async () => {
    database = await createTestDatabase();
    const store = database.open();
    t = await createTestApp({
      store,
      kek,
      clock,
      config: { server: { trustProxy: true }, throttle: { windowSeconds: 60, maxFailuresPerUsername: 2, maxFailuresPerIp: 100, maxFailuresPerUsernameAndIp: 2 }, keys: { rotateEvery: '1d' } },
    });
    closeStore = () => store.close();
    const from = (req: ReturnType<typeof passwordGrant>) => req.set('X-Forwarded-For', IP);

    // day 1: accounts, a session with a retry and a replay, a brute force
    aliceId = await t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'], refreshGraceSeconds: 10 });
    const rs = await t.addClient('rs', { grants: ['client_credentials'] });
    secrets.push(web.client_secret as string, rs.client_secret as string);

    at['sign_in.success'] = clock.now();
    const session = await from(passwordGrant(t, web, 'alice'));
    expect(session.status).toBe(200);
    sids.first = decodeJwt(session.body.access_token).payload.sid as string;
    const rotated = await from(refreshGrant(t, web, session.body.refresh_token));
    expect(rotated.status).toBe(200);
    at['refresh.retry'] = clock.now();
    expect((await from(refreshGrant(t, web, session.body.refresh_token))).status).toBe(200);
    clock.advance(11);
    at['refresh.reuse_detected'] = clock.now();
    expect((await from(refreshGrant(t, web, session.body.refresh_token))).status).toBe(400);
    secrets.push(session.body.refresh_token, session.body.access_token, rotated.body.refresh_token, rotated.body.access_token);

    clock.advance(60);
    at['sign_in.failure'] = clock.now();
    const wrong = 'a wrong password, never recorded';
    secrets.push(wrong);
    for (let i = 0; i < 2; i++) expect((await from(passwordGrant(t, web, 'alice', wrong))).status).toBe(400);
    at['sign_in.throttled'] = clock.now();
    expect((await from(passwordGrant(t, web, 'alice'))).status).toBe(429);

    // day 3: revocations, user and client administration, scheduled key rotation and expiry
    clock.advance(2 * DAY);
    const second = await from(passwordGrant(t, web, 'alice'));
    expect(second.status).toBe(200);
    secrets.push(second.body.refresh_token, second.body.access_token);
    sids.second = decodeJwt(second.body.access_token).payload.sid as string;
    revokedJti = decodeJwt(second.body.access_token).payload.jti as string;
    at['token.revoked'] = clock.now();
    expect((await from(t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: second.body.access_token }))).status).toBe(200);
    expect((await from(t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: second.body.refresh_token }))).status).toBe(200);

    const users = t.app.services.users;
    await users.setEnabled('alice', false);
    await users.setEnabled('alice', true);
    const newPassword = 'an entirely new passphrase';
    secrets.push(newPassword);
    await users.setPassword('alice', newPassword);
    await users.changeRoles('alice', ['TODO_WRITER'], []);
    await users.logout('alice');
    const clients = t.app.services.clients;
    await clients.update('web', { scope: 'todos:read' });
    secrets.push(await clients.rotateSecret('rs'));
    const temp = await t.addClient('temp');
    secrets.push(temp.client_secret as string);
    await clients.remove('temp');

    at['key.rotated'] = clock.now();
    await t.app.tick();
    clock.advance(400);
    at['key.removed'] = clock.now();
    await t.app.tick();
  });

  afterAll(async () => {
    await t?.close();
    await closeStore();
    await database?.drop();
  });

  async function rows(type?: string): Promise<AuditEventRow[]> {
    let q = t.store.db.selectFrom('audit_events').selectAll().orderBy('id');
    if (type) q = q.where('type', '=', type);
    return q.execute();
  }

  async function only(type: string, count = 1): Promise<AuditEventRow[]> {
    const found = await rows(type);
    expect(found, type).toHaveLength(count);
    return found;
  }

  const detail = (r: AuditEventRow | undefined) => (r?.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : undefined);

  describe('rows', () => {
    it('sign_in.success: the user, the client, the IP, the time and the session id', async () => {
      const [first] = await rows('sign_in.success');
      expect(first).toMatchObject({ username: 'alice', user_id: aliceId, client_id: 'web', ip: IP, at: at['sign_in.success'] });
      expect(detail(first)).toEqual({ sid: sids.first });
    });

    it('sign_in.failure: one per failed attempt, with the reason', async () => {
      const found = await only('sign_in.failure', 2);
      for (const r of found) {
        expect(r).toMatchObject({ username: 'alice', user_id: aliceId, client_id: 'web', ip: IP, at: at['sign_in.failure'] });
        expect(detail(r)).toEqual({ reason: 'wrong password' });
      }
    });

    it('sign_in.throttled, with the limit that refused it', async () => {
      const [r] = await only('sign_in.throttled');
      expect(r).toMatchObject({ username: 'alice', user_id: aliceId, client_id: 'web', ip: IP, at: at['sign_in.throttled'] });
      // alice signed in from IP before: past the username's limit it may still try, within its own
      expect(detail(r)).toEqual({ limit: 'per_username_and_ip' });
    });

    it('refresh.retry, with the family', async () => {
      const [r] = await only('refresh.retry');
      expect(r).toMatchObject({ user_id: aliceId, client_id: 'web', ip: IP, at: at['refresh.retry'] });
      expect(detail(r)).toEqual({ sid: sids.first });
    });

    it('refresh.reuse_detected, with the family that was revoked (its sid)', async () => {
      const [r] = await only('refresh.reuse_detected');
      expect(r).toMatchObject({ user_id: aliceId, client_id: 'web', ip: IP, at: at['refresh.reuse_detected'] });
      expect(detail(r)).toEqual({ sid: sids.first });
    });

    it('token.revoked, for an access token (its jti) and a refresh token (its family)', async () => {
      const [access, refresh] = await only('token.revoked', 2);
      for (const r of [access, refresh]) expect(r).toMatchObject({ user_id: aliceId, client_id: 'web', ip: IP, at: at['token.revoked'] });
      expect(detail(access)).toEqual({ token_type: 'access_token', jti: revokedJti });
      expect(detail(refresh)).toEqual({ token_type: 'refresh_token', sid: sids.second });
    });

    it.each(['user.created', 'user.disabled', 'user.enabled', 'user.password_changed', 'user.roles_changed', 'user.logout'])('%s, naming the user', async (type) => {
      const [r] = await only(type);
      expect(r).toMatchObject({ username: 'alice', user_id: aliceId });
      expect(r?.at).toBe(type === 'user.created' ? day1 : at['token.revoked']);
    });

    it('user.roles_changed says which roles, user.created the initial ones', async () => {
      expect(detail((await rows('user.roles_changed'))[0])).toEqual({ added: ['TODO_WRITER'], removed: [] });
      expect(detail((await rows('user.created'))[0])).toEqual({ roles: ['RETRIEVE_TODOS'] });
    });

    it.each([
      ['client.created', 3],
      ['client.updated', 1],
      ['client.secret_rotated', 1],
      ['client.removed', 1],
    ] as const)('%s, naming the client', async (type, count) => {
      for (const r of await only(type, count)) expect(r.client_id).toMatch(/^(web|rs|temp)$/);
      if (type === 'client.updated') expect(detail((await rows(type))[0])).toEqual({ changed: ['scope'] });
    });

    it('key.generated for the first keys, key.rotated on schedule, key.removed once expired', async () => {
      const generated = await only('key.generated', 2);
      for (const r of generated) {
        expect(r.at).toBe(day1);
        expect(detail(r)).toMatchObject({ kid: expect.any(String), alg: 'ES256', initial: true });
      }
      const first = Object.fromEntries(generated.map((g) => [detail(g)?.state, detail(g)?.kid]));
      const [rotated] = await only('key.rotated');
      expect(rotated?.at).toBe(at['key.rotated']);
      expect(detail(rotated)).toEqual({ scheduled: true, retired: first.active, activated: first.next, next: expect.any(String) });
      const [removed] = await only('key.removed');
      expect(removed?.at).toBe(at['key.removed']);
      expect(detail(removed)).toEqual({ kid: first.active, reason: 'expired' });
    });

    it('never records a password, a client secret or a token', async () => {
      const text = JSON.stringify(await rows());
      for (const secret of secrets) expect(text).not.toContain(secret);
      for (const secret of secrets.filter((s) => s.split('.').length === 3)) expect(text).not.toContain(secret.split('.')[2]);
      expect(text).not.toMatch(/tg[rs]_/);
    });
  });

  describe('tollgate audit --json', () => {
    it('prints every event in the INTERFACE.md shape', async () => {
      const events = await auditJson(database, kek);
      expect(events).toHaveLength((await rows()).length);
      for (const e of events) {
        for (const key of Object.keys(e)) expect(['at', 'type', 'user', 'client_id', 'ip', 'detail']).toContain(key);
        expect(new Date(e.at).toISOString()).toBe(e.at);
        expect(e.type).toMatch(/^[a-z_]+\.[a-z_]+$/);
        if (e.detail !== undefined) expect(typeof e.detail).toBe('object');
      }
      expect(events[0]).toMatchObject({ at: new Date(day1).toISOString(), type: 'key.generated' });
      expect(events.find((e) => e.type === 'sign_in.success')).toEqual({ at: new Date(at['sign_in.success'] as number).toISOString(), type: 'sign_in.success', user: 'alice', client_id: 'web', ip: IP, detail: { sid: sids.first, user_id: aliceId } });
      // recorded with the user's id only: the CLI still names the user
      expect(events.find((e) => e.type === 'refresh.reuse_detected')).toMatchObject({ user: 'alice', detail: { sid: sids.first, user_id: aliceId } });
      for (const type of ['sign_in.success', 'sign_in.failure', 'sign_in.throttled', 'refresh.reuse_detected', 'refresh.retry', 'token.revoked', 'user.disabled', 'key.rotated']) {
        expect(events.map((e) => e.type)).toContain(type);
      }
    });

    it('--user takes a username or an id, and finds events recorded with either', async () => {
      const byName = await auditJson(database, kek, ['--user', 'alice']);
      const byId = await auditJson(database, kek, ['--user', aliceId]);
      expect(byId).toEqual(byName);
      expect(new Set(byName.map((e) => e.user))).toEqual(new Set(['alice']));
      const types = byName.map((e) => e.type);
      for (const type of ['user.created', 'sign_in.success', 'sign_in.throttled', 'refresh.reuse_detected', 'token.revoked', 'user.logout']) expect(types).toContain(type);
      expect(types).not.toContain('client.created');
      expect(await auditJson(database, kek, ['--user', 'nobody'])).toEqual([]);
    });

    it('--type takes an event type, or a family with .*', async () => {
      const failures = await auditJson(database, kek, ['--type', 'sign_in.failure']);
      expect(failures.map((e) => e.type)).toEqual(['sign_in.failure', 'sign_in.failure']);
      const signIns = await auditJson(database, kek, ['--type', 'sign_in.*']);
      expect(new Set(signIns.map((e) => e.type))).toEqual(new Set(['sign_in.success', 'sign_in.failure', 'sign_in.throttled']));
      expect(await auditJson(database, kek, ['--type', 'no.such_type'])).toEqual([]);
    });

    it('--since takes an ISO 8601 date or time, and combines with the other filters', async () => {
      const since = new Date(day1 + DAY * 1000).toISOString().slice(0, 10);
      const later = await auditJson(database, kek, ['--since', since]);
      expect(later.length).toBe((await rows()).filter((r) => r.at >= Date.parse(since)).length);
      expect(later.length).toBeGreaterThan(0);
      for (const e of later) expect(Date.parse(e.at)).toBeGreaterThanOrEqual(Date.parse(since));
      expect(later.map((e) => e.type)).not.toContain('sign_in.failure');
      expect(await auditJson(database, kek, ['--since', `${since}T00:00:00Z`])).toEqual(later);
      expect(await auditJson(database, kek, ['--since', `${since}T02:00:00+02:00`])).toEqual(later);
      const combined = await auditJson(database, kek, ['--user', 'alice', '--type', 'token.revoked', '--since', since]);
      expect(combined.map((e) => e.type)).toEqual(['token.revoked', 'token.revoked']);
    });

    it.each(['yesterday', '2026-13-45', '2026-11-24T25:00', ''])('refuses --since %j with one line on stderr and a non-zero exit', async (since) => {
      const r = await cli(database, kek, ['audit', '--json', '--since', since]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/--since/);
    });
  });

  describe('--since parsing', () => {
    it('accepts dates, times and offsets', () => {
      expect(parseSince('2026-11-25')).toBe(Date.UTC(2026, 10, 25));
      expect(parseSince('2026-11-25T00:00:00Z')).toBe(Date.UTC(2026, 10, 25));
      expect(parseSince('2026-11-25T00:00:00.000Z')).toBe(Date.UTC(2026, 10, 25));
      expect(parseSince('2026-11-25T02:00+02:00')).toBe(Date.UTC(2026, 10, 25));
      expect(parseSince('2026-11-25T02:00:00+0200')).toBe(Date.UTC(2026, 10, 25));
    });

    it.each(['yesterday', '24/11/2026', '1700000000', '2026-11-25T', '2026-11-25T1', '2026-11-25T25:00Z', '2026-13-01', ' 2026-11-25', 'now'])('refuses %j', (text) => {
      expect(() => parseSince(text)).toThrow(/--since takes an ISO 8601 date or time/);
    });
  });

  describe('key events from the CLI', () => {
    it('records key.generated, key.rotated and key.removed for `tollgate keys` commands', async () => {
      const db = await createTestDatabase();
      const keyKek = crypto.randomBytes(32);
      const store = db.open();
      try {
        const app = await createTestApp({ store, kek: keyKek });
        await app.close();
        const generated = await cli(db, keyKek, ['keys', 'generate', '--json']);
        expect(generated.code).toBe(0);
        const rotated = await cli(db, keyKek, ['keys', 'rotate', '--json']);
        expect(rotated.code).toBe(0);
        const { retired } = JSON.parse(rotated.stdout) as { retired: string };
        expect((await cli(db, keyKek, ['keys', 'remove', retired, '--force', '--json'])).code).toBe(0);

        const events = await auditJson(db, keyKek, ['--type', 'key.*']);
        expect(events.map((e) => e.type)).toEqual(['key.generated', 'key.generated', 'key.generated', 'key.rotated', 'key.removed']);
        expect(events[2]?.detail).toMatchObject({ kid: (JSON.parse(generated.stdout) as { kid: string }).kid });
        expect(events[3]?.detail).toMatchObject({ retired });
        expect(events[4]?.detail).toEqual({ kid: retired, forced: true });
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
});
