// tollgate db copy --to postgres://…   (the SQLite store named by --database / the config → PostgreSQL)
import fs from 'node:fs';
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { type Store, isPostgresUrl, migrate, openStore } from '../store/database.js';
import { CopyError, copyStore } from '../store/copy.js';
import { CliError, type GlobalOptions, loadCliConfig, output } from './context.js';

export function registerDb(program: Command, common: (c: Command) => Command): void {
  const db = program.command('db').description('the store itself');
  common(db.command('copy').description('copy a SQLite store into an empty PostgreSQL database (stop the servers first)'))
    .requiredOption('--to <url>', 'the target postgres:// URL')
    .action(async (opts: GlobalOptions & { to: string }) => {
      const config = loadCliConfig(opts);
      const from = config.database.url;
      if (isPostgresUrl(from)) throw new CliError('db copy reads a SQLite store: --database (or the config) names a PostgreSQL URL');
      if (from === ':memory:' || !fs.existsSync(from)) throw new CliError(`no SQLite store at ${from}`);
      if (!isPostgresUrl(opts.to)) throw new CliError('--to takes a postgres:// URL');
      // progress is for people; with --json the result carries the counts (and stderr stays for the one error line)
      const progress = (line: string) => (opts.json ? undefined : process.stdout.write(`${line}\n`));
      const source = openStore(from, config.database);
      let target: Store | undefined;
      try {
        await migrate(source);
        target = openStore(opts.to, { poolSize: 2 });
        await migrate(target);
        progress(`copying ${source.location} to ${target.location}`);
        const counts = await copyStore(source, target, { now: systemClock.now(), onTable: (table, rows) => progress(`  ${table}: ${rows} row${rows === 1 ? '' : 's'}`) });
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        output(opts, { to: target.location, tables: counts }, `copied ${total} rows in one transaction; point TOLLGATE_DATABASE at the new database and start the servers with the same TOLLGATE_KEY_ENCRYPTION_KEY`);
      } catch (e) {
        if (e instanceof CopyError) throw new CliError(e.message);
        throw e;
      } finally {
        await source.close().catch(() => undefined);
        await target?.close().catch(() => undefined);
      }
    });
}
