// bin/tollgate: the admin CLI. One file per noun; every command takes --json, --config, --database.
import { Command, CommanderError } from 'commander';
import { registerAudit } from './audit.js';
import { registerClients } from './clients.js';
import { type GlobalOptions, loadCliConfig, output, reportError } from './context.js';
import { registerDb } from './db.js';
import { registerKeys } from './keys.js';
import { registerUsers } from './users.js';

function common(c: Command): Command {
  return c
    .option('--json', 'machine-readable output')
    .option('--config <file>', 'a config file (over config/default.json and config/local.json)')
    .option('--database <path>', 'a SQLite file or postgres:// URL (over the config)');
}

export function buildProgram(): Command {
  const program = new Command('tollgate').description('Tollgate: an OAuth 2 authorization server').showHelpAfterError(false).exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] ? `${s.split('\n')[0]}\n` : '') });

  common(program.command('serve').description('start the server'))
    .option('--workers <n>', 'processes sharing one store (default 1)', (v) => Number(v))
    .action(async (opts: GlobalOptions & { workers?: number }) => {
      const config = loadCliConfig(opts);
      const workers = opts.workers ?? config.server.workers;
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error('--workers takes a number from 1 to 64');
      // loaded only here: the HTTP stack would double the start-up time of every other command
      const { serve } = await import('../server.js');
      await serve({ config, workers });
    });

  common(program.command('migrate').description('apply pending database migrations')).action(async (opts: GlobalOptions) => {
    const { migrate, openStore } = await import('../store/database.js');
    // not withServices: it migrates first (this would then report nothing applied) and needs the KEK
    const config = loadCliConfig(opts);
    const store = openStore(config.database.url, config.database);
    let report;
    try {
      report = { location: store.location, applied: (await migrate(store)).applied };
    } finally {
      await store.close().catch(() => undefined);
    }
    const { applied, location } = report;
    output(opts, report, applied.length > 0 ? `applied ${applied.join(', ')} on ${location}` : `migrations are up to date on ${location}`);
  });

  registerUsers(program, common);
  registerClients(program, common);
  registerKeys(program, common);
  registerAudit(program, common);
  registerDb(program, common);
  return program;
}

/**
 * --json, --config and --database belong to every command; written before the command
 * (`tollgate --database x users list`) they are moved behind it, where commander looks for them.
 */
export function hoistGlobalOptions(argv: string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (arg === '--json' || /^--(config|database)=/.test(arg)) {
      leading.push(arg);
      i += 1;
    } else if ((arg === '--config' || arg === '--database') && i + 1 < argv.length) {
      leading.push(arg, argv[i + 1] ?? '');
      i += 2;
    } else break;
  }
  if (leading.length === 0) return argv;
  // options go before a `--` (after it everything is an argument, such as a kid starting with -)
  const rest = argv.slice(i);
  const end = rest.indexOf('--');
  return end === -1 ? [...rest, ...leading] : [...rest.slice(0, end), ...leading, ...rest.slice(end)];
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(hoistGlobalOptions(argv), { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 1;
    return reportError(e);
  }
}

const code = await runCli(process.argv.slice(2));
// `serve` keeps running; everything else exits with its status
if (hoistGlobalOptions(process.argv.slice(2))[0] !== 'serve' || code !== 0) process.exit(code);
