// What a refresh-token rotation asks of the store (issue 19: the grant's server CPU is mostly its
// statements). Counted on better-sqlite3's statements, so SQLite only; the same repository methods
// run on PostgreSQL.
import SQLite from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, createTestApp, passwordGrant, refreshGrant } from '../../helpers.js';
import { testDialect } from '../../testDatabase.js';

type Runner = (this: SQLite.Statement, ...args: unknown[]) => unknown;

describe.runIf(testDialect() === 'sqlite')('a refresh-token rotation on SQLite', () => {
  const seen: string[] = [];
  let recording = false;
  const proto = Object.getPrototypeOf(new SQLite(':memory:').prepare('select 1')) as Record<'run' | 'all' | 'get', Runner>;
  const originals = { run: proto.run, all: proto.all, get: proto.get };

  beforeAll(() => {
    for (const name of ['run', 'all', 'get'] as const) {
      const original = originals[name];
      proto[name] = function (this: SQLite.Statement, ...args: unknown[]) {
        if (recording) seen.push(this.source);
        return original.apply(this, args);
      };
    }
  });
  afterAll(() => Object.assign(proto, originals));

  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
    await t.addUser('alice', undefined, ['reader', 'writer']);
  });
  afterEach(() => t.close());

  it('spends the token, reads token, family, user and roles in one statement, and inserts the successor', async () => {
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read', audience: 'todo-api' });
    const first = (await passwordGrant(t, web, 'alice')).body as { refresh_token: string };
    seen.length = 0;
    recording = true;
    const res = await refreshGrant(t, web, first.refresh_token);
    recording = false;
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toMatch(/^tgr_/);
    const rotation = seen.filter((sql) => /"(refresh_tokens|refresh_token_families|users|user_roles)"/.test(sql));
    expect(rotation.map((sql) => sql.split(' ').slice(0, 3).join(' '))).toEqual(['update "refresh_tokens" set', 'select "t"."token_hash", "t"."family_id",', 'insert into "refresh_tokens"']);
    // the one read brings the roles along (RFC 9068 §2.2.3.1: the access token's roles)
    expect(rotation[1]).toContain('user_roles');
  });
});
