// `tollgate users …` run as a child process against a temp database (INTERFACE.md, Admin CLI).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordGrant } from '../helpers.js';
import { type CliSandbox, cliSandbox, failureLine } from './run.js';

interface UserJson {
  id: string;
  username: string;
  enabled: boolean;
  roles: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PASSWORD = 'a long enough password';

describe('tollgate users', () => {
  let cli: CliSandbox;
  let alice: UserJson;

  beforeAll(async () => {
    cli = cliSandbox();
    alice = await cli.json<UserJson>(['users', 'add', 'alice', '--password-stdin', '--role', 'RETRIEVE_TODOS', '--role', 'TODO_WRITER'], { stdin: `${PASSWORD}\n` });
  });
  afterAll(() => cli.cleanup());

  /** Can `username` sign in with `password` on a server sharing the store? */
  async function canSignIn(username: string, password: string): Promise<boolean> {
    const t = await cli.app();
    try {
      if (!(await t.app.services.clients.list()).some((c) => c.client_id === 'probe')) await t.addClient('probe', { public: true, grants: ['password'] });
      const res = await t.request.post('/token').type('form').send({ grant_type: 'password', client_id: 'probe', username, password });
      return res.status === 200;
    } finally {
      await t.close();
    }
  }

  it('takes --json and --database before the command as well as after it', async () => {
    const before = await cli.run(['--json', '--database', cli.database, 'users', 'show', 'alice']);
    expect(before.code).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ username: 'alice' });
    const missing = await cli.run(['--database', `${cli.database}.other`, 'users', 'show', 'alice']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no user alice/);
  });

  describe('add', () => {
    it('prints {"id", "username", "enabled", "roles"} with --json; the id is a UUID', () => {
      expect(Object.keys(alice).sort()).toEqual(['enabled', 'id', 'roles', 'username']);
      expect(alice).toMatchObject({ username: 'alice', enabled: true });
      expect(alice.id).toMatch(UUID);
      expect(alice.roles.sort()).toEqual(['RETRIEVE_TODOS', 'TODO_WRITER']);
    });

    it('stores a password the server accepts (read from stdin, trailing newline dropped)', async () => {
      expect(await canSignIn('alice', PASSWORD)).toBe(true);
      expect(await canSignIn('alice', `${PASSWORD}\n`)).toBe(false);
    });

    it('makes the id the sub of the user\'s tokens', async () => {
      const t = await cli.app();
      try {
        const web = await t.addClient('web-sub', { grants: ['password'] });
        const res = await passwordGrant(t, web, 'alice', PASSWORD);
        const payload = JSON.parse(Buffer.from(String(res.body.access_token).split('.')[1] ?? '', 'base64url').toString());
        expect(payload.sub).toBe(alice.id);
      } finally {
        await t.close();
      }
    });

    it('prints a human-readable line without --json', async () => {
      const r = await cli.run(['users', 'add', 'dave', '--password-stdin'], { stdin: PASSWORD });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('dave');
      expect(r.stdout).not.toContain(PASSWORD);
      expect(r.stderr).toBe('');
    });

    it('refuses a duplicate username', async () => {
      const r = await cli.run(['users', 'add', 'alice', '--password-stdin'], { stdin: PASSWORD });
      expect(failureLine(r)).toMatch(/alice already exists/);
      expect(r.code).toBe(1);
    });

    it('never takes the password from argv: --password is an unknown option', async () => {
      const r = await cli.run(['users', 'add', 'erin', '--password', PASSWORD]);
      expect(failureLine(r)).toMatch(/unknown option/);
      expect((await cli.run(['users', 'show', 'erin'])).code).not.toBe(0);
    });

    it('never takes the password from argv: a second argument is refused', async () => {
      const r = await cli.run(['users', 'add', 'erin', PASSWORD]);
      expect(failureLine(r)).toMatch(/too many arguments/);
      expect((await cli.run(['users', 'show', 'erin'])).code).not.toBe(0);
    });

    it('refuses to prompt without a terminal, saying to use --password-stdin', async () => {
      const r = await cli.run(['users', 'add', 'erin'], { stdin: PASSWORD });
      expect(failureLine(r)).toMatch(/--password-stdin/);
      expect((await cli.run(['users', 'show', 'erin'])).code).not.toBe(0);
    });

    it('refuses an empty stdin', async () => {
      expect(failureLine(await cli.run(['users', 'add', 'erin', '--password-stdin'], { stdin: '' }))).toMatch(/no password/);
    });

    it('refuses a password that is too short', async () => {
      expect(failureLine(await cli.run(['users', 'add', 'erin', '--password-stdin'], { stdin: 'short' }))).toMatch(/at least 8/);
    });

    it.each([
      ['a username with a space', ['users', 'add', 'bad name', '--password-stdin']],
      ['an invalid role name', ['users', 'add', 'erin', '--password-stdin', '--role', 'no spaces']],
    ])('refuses %s', async (_what, args) => {
      failureLine(await cli.run(args, { stdin: PASSWORD }));
    });
  });

  describe('list and show', () => {
    it('list --json prints an array of the same objects', async () => {
      const list = await cli.json<UserJson[]>(['users', 'list']);
      expect(list.find((u) => u.username === 'alice')).toEqual({ ...alice, roles: expect.arrayContaining(alice.roles) });
      for (const u of list) expect(Object.keys(u).sort()).toEqual(['enabled', 'id', 'roles', 'username']);
    });

    it('show --json prints the user', async () => {
      const shown = await cli.json<UserJson>(['users', 'show', 'alice']);
      expect(shown.id).toBe(alice.id);
      expect(shown.roles.sort()).toEqual(alice.roles.sort());
    });

    it('list prints a table without --json', async () => {
      const r = await cli.run(['users', 'list']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/USERNAME/);
      expect(r.stdout).toContain(alice.id);
    });
  });

  describe('disable and enable', () => {
    it('disable stops the user signing in; enable lets them back', async () => {
      await cli.json(['users', 'add', 'frank', '--password-stdin'], { stdin: PASSWORD });
      const disabled = await cli.json<UserJson>(['users', 'disable', 'frank']);
      expect(disabled).toMatchObject({ username: 'frank', enabled: false });
      expect(await canSignIn('frank', PASSWORD)).toBe(false);
      const enabled = await cli.json<UserJson>(['users', 'enable', 'frank']);
      expect(enabled).toMatchObject({ username: 'frank', enabled: true });
      expect(await canSignIn('frank', PASSWORD)).toBe(true);
    });
  });

  describe('set-password', () => {
    it('replaces the password (from stdin)', async () => {
      await cli.json(['users', 'add', 'grace', '--password-stdin'], { stdin: PASSWORD });
      const user = await cli.json<UserJson>(['users', 'set-password', 'grace', '--password-stdin'], { stdin: 'a brand new password\n' });
      expect(user.username).toBe('grace');
      expect(await canSignIn('grace', PASSWORD)).toBe(false);
      expect(await canSignIn('grace', 'a brand new password')).toBe(true);
    });

    it('refuses to prompt without a terminal', async () => {
      expect(failureLine(await cli.run(['users', 'set-password', 'alice'], { stdin: PASSWORD }))).toMatch(/--password-stdin/);
    });
  });

  describe('roles', () => {
    it('adds and removes roles', async () => {
      await cli.json(['users', 'add', 'heidi', '--password-stdin', '--role', 'A'], { stdin: PASSWORD });
      const added = await cli.json<UserJson>(['users', 'roles', 'heidi', '--add', 'B', '--add', 'C']);
      expect(added.roles.sort()).toEqual(['A', 'B', 'C']);
      const removed = await cli.json<UserJson>(['users', 'roles', 'heidi', '--remove', 'A']);
      expect(removed.roles.sort()).toEqual(['B', 'C']);
      expect((await cli.json<UserJson>(['users', 'show', 'heidi'])).roles.sort()).toEqual(['B', 'C']);
    });

    it('shows the roles when given no change', async () => {
      const r = await cli.json<UserJson>(['users', 'roles', 'alice']);
      expect(r.roles.sort()).toEqual(['RETRIEVE_TODOS', 'TODO_WRITER']);
    });
  });

  describe('logout', () => {
    it("revokes the user's refresh families", async () => {
      await cli.json(['users', 'add', 'ivan', '--password-stdin'], { stdin: PASSWORD });
      let refreshToken: string;
      const t = await cli.app();
      try {
        const web = await t.addClient('web-logout', { grants: ['password', 'refresh_token'] });
        refreshToken = (await passwordGrant(t, web, 'ivan', PASSWORD)).body.refresh_token;
        const out = await cli.json<{ username: string; revoked_families: number }>(['users', 'logout', 'ivan']);
        expect(out).toEqual({ username: 'ivan', revoked_families: 1 });
        const res = await t.request.post('/token').set('Authorization', `Basic ${Buffer.from(`web-logout:${web.client_secret}`).toString('base64')}`).type('form').send({ grant_type: 'refresh_token', refresh_token: refreshToken });
        expect(res.body.error).toBe('invalid_grant');
      } finally {
        await t.close();
      }
    });
  });

  describe('errors', () => {
    it.each([
      ['show', ['users', 'show', 'nobody']],
      ['disable', ['users', 'disable', 'nobody']],
      ['enable', ['users', 'enable', 'nobody']],
      ['roles', ['users', 'roles', 'nobody', '--add', 'A']],
      ['logout', ['users', 'logout', 'nobody']],
    ])('%s of an unknown user: one line, exit 1', async (_cmd, args) => {
      const r = await cli.run(args);
      expect(failureLine(r)).toBe('tollgate: error: no user nobody');
      expect(r.code).toBe(1);
    });

    it('set-password of an unknown user fails', async () => {
      expect(failureLine(await cli.run(['users', 'set-password', 'nobody', '--password-stdin'], { stdin: PASSWORD }))).toMatch(/no user nobody/);
    });

    it('stops with exit 2 and one line naming the key on an invalid configuration', async () => {
      const r = await cli.run(['users', 'list'], { env: { TOLLGATE_PORT: 'notaport' } });
      expect(r.code).toBe(2);
      expect(failureLine(r)).toMatch(/server\.port.*TOLLGATE_PORT/);
    });

    it('stops with exit 2 when --config names a missing file', async () => {
      const r = await cli.run(['users', 'list', '--config', `${cli.dir}/missing.json`]);
      expect(r.code).toBe(2);
      expect(failureLine(r)).toContain('missing.json');
    });

    it('an unknown subcommand fails with one line', async () => {
      failureLine(await cli.run(['users', 'frobnicate']));
    });
  });

  it('--database points the command at another store', async () => {
    const other = `${cli.dir}/other.db`;
    await cli.json(['users', 'add', 'judy', '--password-stdin', '--database', other], { stdin: PASSWORD });
    expect((await cli.json<UserJson[]>(['users', 'list', '--database', other])).map((u) => u.username)).toEqual(['judy']);
    expect((await cli.json<UserJson[]>(['users', 'list'])).map((u) => u.username)).not.toContain('judy');
  });
});
