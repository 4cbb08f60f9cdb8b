// tollgate users add|list|show|disable|enable|set-password|roles|logout
import type { Command } from 'commander';
import type { UserView } from '../users/users.js';
import { UserError } from '../users/users.js';
import { CliError, type GlobalOptions, output, table, withServices } from './context.js';
import { readPassword } from './password.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function describe(u: UserView): string {
  return `${u.username}  id=${u.id}  ${u.enabled ? 'enabled' : 'disabled'}  roles=${u.roles.join(',') || '-'}`;
}

async function run<T>(opts: GlobalOptions, fn: Parameters<typeof withServices<T>>[1]): Promise<T> {
  try {
    return await withServices(opts, fn);
  } catch (e) {
    if (e instanceof UserError) throw new CliError(e.message);
    throw e;
  }
}

export function registerUsers(program: Command, common: (c: Command) => Command): void {
  const users = program.command('users').description('manage users');

  common(users.command('add <username>').description('add a user (password from a prompt or --password-stdin)'))
    .option('--password-stdin', 'read the password from standard input')
    .option('--role <role>', 'a role name (repeatable)', collect, [])
    .action(async (username: string, opts: GlobalOptions & { passwordStdin?: boolean; role: string[] }) => {
      const password = await readPassword(opts.passwordStdin);
      const user = await run(opts, (s) => s.users.add(username, password, opts.role));
      output(opts, user, `added user ${describe(user)}`);
    });

  common(users.command('list').description('list users')).action(async (opts: GlobalOptions) => {
    const list = await run(opts, (s) => s.users.list());
    output(opts, list, () => table(['USERNAME', 'ID', 'ENABLED', 'ROLES'], list.map((u) => [u.username, u.id, u.enabled ? 'yes' : 'no', u.roles.join(',')])));
  });

  common(users.command('show <username>').description('show one user')).action(async (username: string, opts: GlobalOptions) => {
    const user = await run(opts, (s) => s.users.show(username));
    output(opts, user, describe(user));
  });

  common(users.command('disable <username>').description('disable a user and revoke everything they hold')).action(async (username: string, opts: GlobalOptions) => {
    const user = await run(opts, (s) => s.users.setEnabled(username, false));
    output(opts, user, `disabled ${username}; their refresh tokens are revoked and their access tokens denied`);
  });

  common(users.command('enable <username>').description('enable a user')).action(async (username: string, opts: GlobalOptions) => {
    const user = await run(opts, (s) => s.users.setEnabled(username, true));
    output(opts, user, `enabled ${username}`);
  });

  common(users.command('set-password <username>').description('set a password (revokes the user\'s tokens)'))
    .option('--password-stdin', 'read the password from standard input')
    .action(async (username: string, opts: GlobalOptions & { passwordStdin?: boolean }) => {
      const password = await readPassword(opts.passwordStdin);
      const user = await run(opts, (s) => s.users.setPassword(username, password));
      output(opts, user, `password changed for ${username}; their tokens are revoked`);
    });

  common(users.command('roles <username>').description('show or change a user\'s roles'))
    .option('--add <role>', 'add a role (repeatable)', collect, [])
    .option('--remove <role>', 'remove a role (repeatable)', collect, [])
    .action(async (username: string, opts: GlobalOptions & { add: string[]; remove: string[] }) => {
      const user = await run(opts, (s) => s.users.changeRoles(username, opts.add, opts.remove));
      output(opts, user, `${username}: ${user.roles.join(', ') || '(no roles)'}`);
    });

  common(users.command('logout <username>').description('revoke every refresh family of the user and deny their access tokens')).action(async (username: string, opts: GlobalOptions) => {
    const result = await run(opts, (s) => s.users.logout(username));
    output(opts, { username, revoked_families: result.families }, `logged out ${username}: ${result.families} session(s) revoked, access tokens denied`);
  });
}
