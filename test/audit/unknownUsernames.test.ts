// Issue 15 §6: what is typed into the username field of a failed sign-in is sometimes a password.
// A name that matches no account is recorded as a keyed hash, HMAC-SHA256 under a key derived from
// the key-encryption key: equal names give equal values, so an operator can still correlate the
// attempts on one name (`tollgate audit --user NAME` finds them), and a copied database without
// the KEK does not give the names back. Names of existing accounts stay in clear.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventJson } from '../../src/cli/audit.js';
import { deriveKey } from '../../src/keys/encryption.js';
import type { AuditEventRow } from '../../src/store/schema.js';
import { runCli } from '../cli/run.js';
import { FakeClock, type TestApp, createTestApp, passwordGrant } from '../helpers.js';
import { type TestDatabase, createTestDatabase } from '../testDatabase.js';

const TYPED_PASSWORD = 'Correct-Horse-Battery-Staple-9';
const OTHER_NAME = 'mallory-who-does-not-exist';

/** What an operator computes to look a name up: the derivation is part of the contract. */
const hmacOf = (kek: Buffer, name: string) => `hmac-sha256:${crypto.createHmac('sha256', deriveKey(kek, 'username pseudonym')).update(name, 'utf8').digest('base64url')}`;

interface Trail {
  database: TestDatabase;
  kek: Buffer;
  t: TestApp;
  rows: AuditEventRow[];
  close(): Promise<void>;
}

/** An app with its own KEK; a user mistypes, then somebody tries names that exist nowhere. */
async function trail(): Promise<Trail> {
  const database = await createTestDatabase();
  const store = database.open();
  const kek = crypto.randomBytes(32);
  const t = await createTestApp({ store, kek, clock: new FakeClock(), config: { throttle: { windowSeconds: 60, maxFailuresPerUsername: 2, maxFailuresPerIp: 100, maxFailuresPerUsernameAndIp: 2 } } });
  await t.addUser('alice');
  const web = await t.addClient('web', { grants: ['password'] });
  expect((await passwordGrant(t, web, 'alice', 'not the password')).status).toBe(400);
  for (let i = 0; i < 2; i++) expect((await passwordGrant(t, web, TYPED_PASSWORD, 'whatever')).status).toBe(400);
  expect((await passwordGrant(t, web, TYPED_PASSWORD, 'whatever')).status).toBe(429);
  expect((await passwordGrant(t, web, OTHER_NAME, 'whatever')).status).toBe(400);
  const rows = await t.store.db.selectFrom('audit_events').selectAll().where('type', 'like', 'sign_in.%').orderBy('id').execute();
  return {
    database,
    kek,
    t,
    rows,
    async close() {
      await t.close();
      await store.close();
      await database.drop();
    },
  };
}

describe('unknown usernames in the audit trail', () => {
  let first: Trail;
  let second: Trail;

  beforeAll(async () => {
    first = await trail();
    second = await trail();
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
  });

  it('records no name that matches no account, in any column', async () => {
    const text = JSON.stringify(first.rows);
    expect(text).not.toContain(TYPED_PASSWORD);
    expect(text.toLowerCase()).not.toContain(TYPED_PASSWORD.toLowerCase());
    expect(text).not.toContain(OTHER_NAME);
  });

  it('records it as HMAC-SHA256 under a key derived from the key-encryption key, equal for equal names', async () => {
    const unknown = first.rows.filter((r) => r.user_id === null);
    expect(unknown.map((r) => [r.type, r.username])).toEqual([
      ['sign_in.failure', hmacOf(first.kek, TYPED_PASSWORD)],
      ['sign_in.failure', hmacOf(first.kek, TYPED_PASSWORD)],
      ['sign_in.throttled', hmacOf(first.kek, TYPED_PASSWORD)],
      ['sign_in.failure', hmacOf(first.kek, OTHER_NAME)],
    ]);
    expect(hmacOf(first.kek, TYPED_PASSWORD)).not.toBe(hmacOf(first.kek, OTHER_NAME));
  });

  it('gives another value under another key-encryption key', () => {
    const under = (trail: Trail) => trail.rows.find((r) => r.type === 'sign_in.failure' && r.user_id === null)?.username;
    expect(under(second)).toBe(hmacOf(second.kek, TYPED_PASSWORD));
    expect(under(second)).not.toBe(under(first));
  });

  it('keeps the names of existing accounts in clear', () => {
    const known = first.rows.filter((r) => r.user_id !== null);
    expect(known.map((r) => [r.type, r.username])).toEqual([['sign_in.failure', 'alice']]);
  });

  it('does not keep the typed name in the throttle counters either', async () => {
    const keys = (await first.t.store.db.selectFrom('login_failures').select('key').execute()).map((r) => r.key);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.toLowerCase()).not.toContain(TYPED_PASSWORD.toLowerCase());
  });

  it('lets an operator find the attempts on one name with tollgate audit --user NAME', async () => {
    const env = { ...process.env, TOLLGATE_KEY_ENCRYPTION_KEY: first.kek.toString('base64url'), TOLLGATE_CONFIG: '', TOLLGATE_DATABASE: '' };
    const r = await runCli(['audit', '--json', '--user', TYPED_PASSWORD, '--database', first.database.url], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = JSON.parse(r.stdout) as AuditEventJson[];
    expect(events.map((e) => [e.type, e.user])).toEqual([
      ['sign_in.failure', hmacOf(first.kek, TYPED_PASSWORD)],
      ['sign_in.failure', hmacOf(first.kek, TYPED_PASSWORD)],
      ['sign_in.throttled', hmacOf(first.kek, TYPED_PASSWORD)],
    ]);
  });
});
