// tollgate audit [--user U] [--type T] [--since DATE]
import type { Command } from 'commander';
import { AuditRepository } from '../store/audit.js';
import { CliError, type GlobalOptions, output, table, withServices } from './context.js';

export function registerAudit(program: Command, common: (c: Command) => Command): void {
  common(program.command('audit').description('show the audit trail'))
    .option('--user <user>', 'a username or user id')
    .option('--type <type>', 'an event type, e.g. sign_in.failure (or sign_in.*)')
    .option('--since <date>', 'an ISO 8601 date or time')
    .option('--limit <n>', 'at most this many events', (v) => Number(v))
    .action(async (opts: GlobalOptions & { user?: string; type?: string; since?: string; limit?: number }) => {
      let since: number | undefined;
      if (opts.since !== undefined) {
        if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(opts.since) || Number.isNaN(Date.parse(opts.since))) throw new CliError(`--since takes an ISO 8601 date or time, not ${JSON.stringify(opts.since)}`);
        since = Date.parse(opts.since);
      }
      if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new CliError('--limit takes a positive number');
      const rows = await withServices(opts, (s) => new AuditRepository(s.db).query({ user: opts.user, type: opts.type, since, limit: opts.limit }));
      const events = rows.map((r) => {
        const e: Record<string, unknown> = { at: new Date(r.at).toISOString(), type: r.type };
        if (r.username ?? r.user_id) e.user = r.username ?? r.user_id;
        if (r.user_id) e.user_id = r.user_id;
        if (r.client_id) e.client_id = r.client_id;
        if (r.ip) e.ip = r.ip;
        if (r.detail) e.detail = JSON.parse(r.detail) as unknown;
        return e;
      });
      output(opts, events, () =>
        table(['AT', 'TYPE', 'USER', 'CLIENT', 'IP', 'DETAIL'], events.map((e) => [String(e.at), String(e.type), String(e.user ?? ''), String(e.client_id ?? ''), String(e.ip ?? ''), e.detail ? JSON.stringify(e.detail) : ''])),
      );
    });
}
