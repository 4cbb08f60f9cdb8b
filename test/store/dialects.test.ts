// The store on both dialects: `npm test` runs this on SQLite, `npm run test:postgres` on a fresh
import { sql } from 'kysely';
import { migrations } from '../../migrations/index.js';
// PostgreSQL database per test. What differs between the two (bigint columns, row counts, sequences,
// LIKE, conflicts, transactions) must not leak into the repositories.
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/database.js';
import { AuditRepository } from '../../src/store/audit.js';
import { DenyListRepository } from '../../src/store/denyList.js';
import { RefreshTokenRepository } from '../../src/store/refreshTokens.js';
import { UserRepository } from '../../src/store/users.js';
import { type TestApp, basic, createTestApp, passwordGrant } from '../helpers.js';
import { createTestDatabase, testDialect } from '../testDatabase.js';

describe(`the store on ${testDialect()}`, () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(() => t.close());

  it('runs every test app on the dialect of this run (the suite runs once per dialect)', () => {
    expect(t.store.dialect).toBe(testDialect());
    if (testDialect() === 'postgres') expect(t.config.database.url).toMatch(/^postgres:\/\/.*\/tollgate_t_[0-9a-f]{16}$/);
  });

  it('reads bigint times and serial ids back as numbers, not strings', async () => {
    const sub = await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    expect((await passwordGrant(t, web, 'alice')).status).toBe(200);
    const user = await new UserRepository(t.store.db).byId(sub);
    expect(typeof user?.created_at).toBe('number');
    expect(user?.created_at).toBe(t.clock.now());
    const [family] = await new RefreshTokenRepository(t.store.db).liveFamiliesOfUser(sub, t.clock.now());
    expect(typeof family?.expires_at).toBe('number');
    const deny = new DenyListRepository(t.store.db);
    await deny.insert([{ type: 'jti', value: 'j1', expires_at: 2_000_000_000 }], t.clock.now());
    const [row] = await deny.allAfter(0, 10);
    expect(typeof row?.id).toBe('number');
    expect(typeof row?.expires_at).toBe('number');
    expect(await deny.lastAssignedId()).toBe(row?.id);
  });

  it("leaves pg's global type parsers alone: bigint is a number on the store's own connections only", () => {
    // another pg user in the same process (an application embedding Tollgate) keeps pg's defaults
    expect(pg.types.getTypeParser(pg.types.builtins.INT8, 'text')('9007199254740993')).toBe('9007199254740993');
  });

  it('marks a refresh token spent exactly once (compare-and-set on spent_at)', async () => {
    const sub = await t.addUser('alice');
    await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const repo = new RefreshTokenRepository(t.store.db);
    const now = t.clock.now();
    await repo.insertFamily({ id: 'f1', user_id: sub, client_id: 'web', scope: '', created_at: now, expires_at: now + 1e6, access_expires_at: now, revoked_at: null, revoked_reason: null, status_list: null, status_idx: null });
    await repo.insertToken({ token_hash: 'h1', family_id: 'f1', parent_hash: null, created_at: now, expires_at: now + 1e6, spent_at: null });
    expect(await repo.markSpent('h1', now)).toBe(true);
    expect(await repo.markSpent('h1', now + 1)).toBe(false);
    expect(await repo.markSpent('no-such-token', now)).toBe(false);
    expect((await repo.findToken('h1'))?.spent_at).toBe(now);
    expect(await repo.revokeFamily('f1', now, 'test')).toBe(true);
    expect(await repo.revokeFamily('f1', now, 'test')).toBe(false);
  });

  it('adds a role that already exists, and a role the user already has, without a conflict', async () => {
    const sub = await t.addUser('alice', undefined, ['READER']);
    const bob = await t.addUser('bob', undefined, ['READER']);
    const repo = new UserRepository(t.store.db);
    await repo.addRole(sub, 'READER', t.clock.now());
    await t.store.db.transaction().execute(async (trx) => {
      // inside a transaction too: on Postgres a failed statement would abort the whole transaction
      await new UserRepository(trx).addRole(bob, 'READER', t.clock.now());
      await new UserRepository(trx).addRole(bob, 'WRITER', t.clock.now());
    });
    expect(await repo.roles(sub)).toEqual(['READER']);
    expect(await repo.roles(bob)).toEqual(['READER', 'WRITER']);
  });

  it('filters audit events by a dotted type prefix, literally (no LIKE wildcards, same case rules on both)', async () => {
    const audit = new AuditRepository(t.store.db);
    const at = t.clock.now();
    for (const type of ['sign_in.success', 'sign_in.failure', 'signXin.odd', 'SIGN_IN.upper', 'sign_out.done', 'sign_in']) await audit.insert({ type }, at);
    const types = (await audit.query({ type: 'sign_in.*' })).map((e) => e.type);
    expect(types).toEqual(['sign_in.success', 'sign_in.failure']);
    expect((await audit.query({ type: '%.*' })).map((e) => e.type)).toEqual([]);
    expect((await audit.query({ type: 'sign_in' })).map((e) => e.type)).toEqual(['sign_in']);
  });

  it('lists users in a stable order by username', async () => {
    for (const name of ['carol', 'alice', 'Bob', 'dave']) await t.addUser(name);
    const names = (await t.app.services.users.list()).map((u) => u.username);
    expect([...names].sort()).toEqual(['Bob', 'alice', 'carol', 'dave']);
    expect(names).toEqual([...names].sort());
  });

  it('rolls a transaction back as a whole when a statement in it fails', async () => {
    const sub = await t.addUser('alice');
    await expect(
      t.store.db.transaction().execute(async (trx) => {
        await new UserRepository(trx).update(sub, { enabled: 0, updated_at: 1 });
        await new UserRepository(trx).insert({ id: sub, username: 'again', password_hash: 'x', enabled: 1, created_at: 1, updated_at: 1 });
      }),
    ).rejects.toThrow();
    expect((await new UserRepository(t.store.db).byId(sub))?.enabled).toBe(1);
  });

  it('answers a NUL in a parameter or a Basic client id with a 4xx, never a 500 (PostgreSQL text cannot hold one)', async () => {
    await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const nulUser = await t.request.post('/token').set('Authorization', basic(web)).type('form').send('grant_type=password&username=al%00ice&password=x');
    expect([nulUser.status, nulUser.body.error]).toEqual([400, 'invalid_grant']);
    const nulPost = await t.request.post('/token').type('form').send('grant_type=password&client_id=w%00eb&username=alice&password=x');
    expect([nulPost.status, nulPost.body.error]).toEqual([401, 'invalid_client']);
    const nulToken = await t.request.post('/introspect').set('Authorization', basic(web)).type('form').send('token=a%00b');
    expect([nulToken.status, nulToken.body]).toEqual([200, { active: false }]);
    const nulBasic = await t.request.post('/token').set('Authorization', basic({ client_id: 'w\u0000eb', client_secret: 'x' })).type('form').send({ grant_type: 'client_credentials' });
    expect([nulBasic.status, nulBasic.body.error]).toEqual([401, 'invalid_client']);
  });

  it('migrates an already migrated store without changes (tollgate migrate is idempotent)', async () => {
    expect((await migrate(t.store)).applied).toEqual([]);
  });
});

describe(`a fresh ${testDialect()} database`, () => {
  it('applies every migration once, and a second store on it finds nothing to do', async () => {
    const database = await createTestDatabase();
    const first = database.open();
    const second = database.open();
    try {
      expect((await migrate(first)).applied).toEqual(Object.keys(migrations));
      expect((await migrate(second)).applied).toEqual([]);
      // 002: nothing looks a refresh token up by its parent, so that index is gone
      const indexes = first.dialect === 'sqlite'
        ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'refresh_tokens'`.execute(first.db)
        : await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'refresh_tokens'`.execute(first.db);
      const names = indexes.rows.map((r) => r.name);
      expect(names).toContain('refresh_tokens_family');
      expect(names).not.toContain('refresh_tokens_parent');
    } finally {
      await first.close();
      await second.close();
      await database.drop();
    }
  });

  it.skipIf(testDialect() !== 'postgres')('fails with a clear error on a Postgres database that does not exist', async () => {
    const database = await createTestDatabase();
    await database.drop();
    const store = database.open();
    try {
      await expect(migrate(store)).rejects.toThrow(/does not exist/);
    } finally {
      await store.close();
    }
  });
});
