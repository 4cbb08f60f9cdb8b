// tollgate audit [--user U] [--type T] [--since DATE]
import type { Command } from 'commander';
import type { Domain as Services } from '../services.js';
import { AuditRepository, type AuditQuery } from '../store/audit.js';
import type { AuditEventRow } from '../store/schema.js';
import { UserRepository } from '../store/users.js';
import { CliError, type GlobalOptions, output, table, withServices } from './context.js';

const MAX_EVENTS = 10_000;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** The INTERFACE.md event: {at, type, user?, client_id?, ip?, detail?}. */
export interface AuditEventJson {
  at: string;
  type: string;
  user?: string;
  client_id?: string;
  ip?: string;
  detail?: Record<string, unknown>;
}

export function parseSince(text: string): number {
  const ms = ISO_8601.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new CliError(`--since takes an ISO 8601 date or time, not ${JSON.stringify(text)}`);
  return ms;
}

/**
 * Some events know the user by name only, others by id only (refresh reuse, revocation), and a name
 * that matched no account only by its keyed hash: `--user` takes a name or an id and finds all.
 */
async function findEvents(services: Services, user: string | undefined, query: AuditQuery): Promise<AuditEventRow[]> {
  const repo = new AuditRepository(services.db);
  if (user === undefined) return repo.query(query);
  const users = new UserRepository(services.db);
  const known = (await users.byUsername(user)) ?? (await users.byId(user));
  const merged = new Map<number, AuditEventRow>();
  // a name that matched no account at the time was recorded as its keyed hash (Audit.pseudonym)
  for (const key of new Set([user, known?.id, known?.username, services.audit.pseudonym(user)])) if (key) for (const r of await repo.query({ ...query, user: key })) merged.set(r.id, r);
  return [...merged.values()].sort((a, b) => a.id - b.id).slice(0, query.limit ?? MAX_EVENTS);
}

async function toJson(services: Services, rows: AuditEventRow[]): Promise<AuditEventJson[]> {
  const users = new UserRepository(services.db);
  const names = new Map<string, string | undefined>();
  for (const id of new Set(rows.filter((r) => !r.username && r.user_id).map((r) => r.user_id as string))) names.set(id, (await users.byId(id))?.username);
  return rows.map((r) => {
    const e: AuditEventJson = { at: new Date(r.at).toISOString(), type: r.type };
    const username = r.username ?? (r.user_id ? names.get(r.user_id) : undefined);
    const who = username ?? r.user_id;
    if (who) e.user = who;
    if (r.client_id) e.client_id = r.client_id;
    if (r.ip) e.ip = r.ip;
    // the event shape is fixed: the user's id (the `sub` of their tokens), when `user` shows the name, goes in detail
    const detail = { ...(r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : {}), ...(username && r.user_id ? { user_id: r.user_id } : {}) };
    if (Object.keys(detail).length > 0) e.detail = detail;
    return e;
  });
}

export function registerAudit(program: Command, common: (c: Command) => Command): void {
  common(program.command('audit').description('show the audit trail'))
    .option('--user <user>', 'a username or user id')
    .option('--type <type>', 'an event type, e.g. sign_in.failure (or sign_in.*)')
    .option('--since <date>', 'an ISO 8601 date or time')
    .option('--limit <n>', 'at most this many events', (v) => Number(v))
    .action(async (opts: GlobalOptions & { user?: string; type?: string; since?: string; limit?: number }) => {
      const since = opts.since === undefined ? undefined : parseSince(opts.since);
      if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new CliError('--limit takes a positive number');
      const events = await withServices(opts, async (s) => toJson(s, await findEvents(s, opts.user, { type: opts.type, since, limit: opts.limit })));
      output(opts, events, () =>
        table(['AT', 'TYPE', 'USER', 'CLIENT', 'IP', 'DETAIL'], events.map((e) => [e.at, e.type, e.user ?? '', e.client_id ?? '', e.ip ?? '', e.detail ? JSON.stringify(e.detail) : ''])),
      );
    });
}
