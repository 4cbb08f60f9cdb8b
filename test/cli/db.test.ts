// tollgate db copy --to postgres://…: a populated SQLite store moves to PostgreSQL in one
// transaction, and an app started on the copy (same key-encryption key) carries on where the old
// one stopped: users sign in, old refresh tokens rotate, old access tokens still verify, revoked
// ones stay revoked, and the deny-list feed's cursors continue.
import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditRepository } from '../../src/store/audit.js';
import { COPY_ORDER, copyStore } from '../../src/store/copy.js';
import { migrations } from '../../migrations/index.js';
import { migrate } from '../../src/store/database.js';
import { DenyListRepository } from '../../src/store/denyList.js';
import { FakeClock, type TestApp, basic, createTestApp, passwordGrant, refreshGrant } from '../helpers.js';
import { type TestDatabase, createTestDatabase, describePostgres, testDialect } from '../testDatabase.js';
import { runCli } from './run.js';

type Creds = { client_id: string; client_secret?: string };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function database(dialect: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  const db = await createTestDatabase(dialect);
  cleanups.push(() => db.drop());
  return db;
}

/** An app on `db`; the clock starts at the real time (the CLI keeps refresh families by the real time). */
async function appOn(db: TestDatabase, kek: Buffer, clock: FakeClock): Promise<TestApp> {
  const store = db.open();
  const t = await createTestApp({ store, kek, clock, config: { database: { url: db.url } } });
  cleanups.push(async () => {
    await t.close();
    await store.close();
  });
  return t;
}

/** A SQLite store with a bit of everything; returns what the test checks on the copy. */
async function populate(source: TestDatabase, kek: Buffer, clock = new FakeClock(Date.now())) {
  const t = await appOn(source, kek, clock);
  await t.addUser('alice', undefined, ['RETRIEVE_TODOS', 'TODO_WRITER']);
  await t.addUser('bob');
  const web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read', audience: 'todo-api' });
  const api = await t.addClient('todo-api', { grants: ['client_credentials'] });
  const alice = (await passwordGrant(t, web, 'alice').expect(200)).body as { access_token: string; refresh_token: string };
  const rotated = (await refreshGrant(t, web, alice.refresh_token).expect(200)).body as { access_token: string; refresh_token: string };
  const bob = (await passwordGrant(t, web, 'bob').expect(200)).body as { access_token: string; refresh_token: string };
  await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: bob.access_token }).expect(200);
  await passwordGrant(t, web, 'alice', 'not the password').expect(400);
  const cursor = (await t.request.get('/deny-list').set('Authorization', basic(api)).expect(200)).body.cursor as string;
  return { web, api, alice, rotated, bob, cursor, app: t };
}

const introspect = async (t: TestApp, client: Creds, token: string) => (await t.request.post('/introspect').set('Authorization', basic(client)).type('form').send({ token }).expect(200)).body as { active: boolean; sub?: string };

describePostgres('tollgate db copy (SQLite → PostgreSQL)', () => {
  it('copies a populated store; an app on the copy signs in, rotates old refresh tokens and verifies old access tokens', async () => {
    const kek = crypto.randomBytes(32);
    const clock = new FakeClock(Date.now());
    const source = await database('sqlite');
    const target = await database('postgres');
    const before = await populate(source, kek, clock);
    await before.app.close();

    const from = source.open();
    const to = target.open();
    cleanups.push(() => from.close().then(() => to.close()));
    await migrate(to);
    const progress: string[] = [];
    const counts = await copyStore(from, to, { now: clock.now(), onTable: (table, n) => progress.push(`${table}:${n}`) });
    expect(progress.map((p) => p.split(':')[0])).toEqual(COPY_ORDER.map((c) => c.table));
    expect(counts).toMatchObject({ users: 2, roles: 2, user_roles: 2, clients: 2, refresh_token_families: 2, refresh_tokens: 3, signing_keys: 2, deny_list: 1, login_failures: 3, known_addresses: 2 });
    expect(counts.audit_events).toBe((await new AuditRepository(from.db).query({})).length);

    const after = await appOn(target, kek, clock);
    expect(after.store.dialect).toBe('postgres');
    // the old access token verifies (the signing keys came along, still encrypted under the same KEK)
    expect(await introspect(after, before.api, before.rotated.access_token)).toMatchObject({ active: true });
    // the revoked one stays revoked
    expect(await introspect(after, before.api, before.bob.access_token)).toEqual({ active: false });
    // sign-in works, with the roles
    await passwordGrant(after, before.web, 'alice').expect(200);
    // the live refresh token rotates
    const next = await refreshGrant(after, before.web, before.rotated.refresh_token);
    clock.advance(60);
    expect(next.status).toBe(200);
    // the spent one is still known as spent: presented again, it is a replay and revokes the family
    const replay = await refreshGrant(after, before.web, before.alice.refresh_token);
    expect(replay.body.error).toBe('invalid_grant');
    expect((await refreshGrant(after, before.web, next.body.refresh_token)).status).toBe(400);
    // the feed continues from the old cursor: new entries get ids past the copied ones
    const feed = (await after.request.get('/deny-list').query({ after: before.cursor }).set('Authorization', basic(before.api)).expect(200)).body as { cursor: string; entries: Array<{ type: string }> };
    expect(feed.entries.map((e) => e.type)).toEqual(['sid']);
    expect(Number(feed.cursor)).toBeGreaterThan(Number(before.cursor));
    const ids = (await new DenyListRepository(after.store.db).allAfter(0, 10)).map((r) => r.id);
    expect(ids[0]).toBe(Number(before.cursor));
    // the throttle's memory came along too
    expect(counts.login_failures).toBeGreaterThan(0);
  });

  it('copies all or nothing, leaves out refresh families that can never matter again, and refuses a non-empty target', async () => {
    const kek = crypto.randomBytes(32);
    const source = await database('sqlite');
    const target = await database('postgres');
    const before = await populate(source, kek);
    await before.app.close();
    const from = source.open();
    const to = target.open();
    cleanups.push(() => from.close().then(() => to.close()));
    await migrate(to);
    // interrupted half-way: the transaction leaves the target as it was, empty
    const interrupt = (table: string) => {
      if (table === 'refresh_tokens') throw new Error('interrupted');
    };
    await expect(copyStore(from, to, { now: Date.now(), onTable: interrupt })).rejects.toThrow('interrupted');
    for (const { table } of COPY_ORDER) expect(await to.db.selectFrom(table).selectAll().execute(), table).toEqual([]);
    // a year later every family has expired and so has every access token it issued
    const counts = await copyStore(from, to, { now: Date.now() + 365 * 86_400_000 });
    expect(counts.refresh_token_families).toBe(0);
    expect(counts.refresh_tokens).toBe(0);
    expect(counts.users).toBe(2);
    // a second copy into the now non-empty target is refused, and changes nothing
    await expect(copyStore(from, to, { now: Date.now() })).rejects.toThrow(/not empty \(users has 2 rows\)/);
    expect((await to.db.selectFrom('users').selectAll().execute()).length).toBe(2);
  });

  it('runs as `tollgate db copy --to URL`, printing each table, and refuses a non-empty target', async () => {
    const kek = crypto.randomBytes(32);
    const source = await database('sqlite');
    const target = await database('postgres');
    const before = await populate(source, kek);
    await before.app.close();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, TOLLGATE_KEY_ENCRYPTION_KEY: kek.toString('base64url') };
    const first = await runCli(['db', 'copy', '--database', source.url, '--to', target.url], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    for (const { table } of COPY_ORDER) expect(first.stdout).toMatch(new RegExp(`^  ${table}: \\d+ rows?$`, 'm'));
    expect(first.stdout).toMatch(/copied \d+ rows in one transaction/);

    const again = await runCli(['db', 'copy', '--database', source.url, '--to', target.url, '--json'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/not empty/);
  });
});

describe('tollgate migrate', () => {
  it(`migrates an empty ${testDialect()} database once (--database), reports what it applied, then finds nothing to do`, async () => {
    const target = await database(testDialect());
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url') };
    const first = await runCli(['migrate', '--database', target.url, '--json'], env);
    expect(first.stderr).toBe('');
    expect(JSON.parse(first.stdout)).toMatchObject({ applied: Object.keys(migrations) });
    const again = await runCli(['migrate', '--database', target.url], env);
    expect(again.stdout).toMatch(/^migrations are up to date on /);
  });
});

describe('tollgate db copy: refused arguments', () => {
  it('refuses a target that is not a postgres:// URL, and a source that does not exist, with one line each', async () => {
    const source = await database('sqlite');
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, TOLLGATE_KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64url') };
    const missing = await runCli(['db', 'copy', '--database', source.url, '--to', 'postgres://127.0.0.1:1/x'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tollgate: error: no SQLite store at .*\n$/);
    const store = source.open();
    await migrate(store);
    await store.close();
    const notPostgres = await runCli(['db', 'copy', '--database', source.url, '--to', '/tmp/other.db'], env);
    expect(notPostgres.code).toBe(1);
    expect(notPostgres.stderr).toBe('tollgate: error: --to takes a postgres:// URL\n');
    const noTarget = await runCli(['db', 'copy', '--database', source.url], env);
    expect(noTarget.code).not.toBe(0);
    expect(noTarget.stderr).toMatch(/--to/);
  });
});
