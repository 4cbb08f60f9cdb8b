// tollgate clients add|list|show|update|remove|rotate-secret
import type { Command } from 'commander';
import { ClientError, type ClientSpec, type ClientView } from '../clients/clients.js';
import { CliError, type GlobalOptions, output, table, withServices } from './context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function seconds(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new CliError(`${flag} takes whole seconds, not ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** The INTERFACE.md shape of `clients show --json`. */
export function clientJson(c: ClientView) {
  return { client_id: c.client_id, public: c.public, grants: c.grants, scope: c.scope, audience: c.audience, refresh_grace_seconds: c.refresh_grace_seconds, access_token_ttl: c.access_token_ttl, require_dpop: c.require_dpop };
}

function describe(c: ClientView): string {
  return [
    `client_id:   ${c.client_id}`,
    `type:        ${c.public ? 'public' : 'confidential'}`,
    `grants:      ${c.grants.join(' ')}`,
    `scope:       ${c.scope || '(none)'}`,
    `audience:    ${c.audience}`,
    `refresh grace: ${c.refresh_grace_seconds ?? '(server default)'}`,
    `require DPoP: ${c.require_dpop ? 'yes' : 'no'}`,
  ].join('\n');
}

async function run<T>(opts: GlobalOptions, fn: Parameters<typeof withServices<T>>[1]): Promise<T> {
  try {
    return await withServices(opts, fn);
  } catch (e) {
    if (e instanceof ClientError) throw new CliError(e.message);
    throw e;
  }
}

interface SpecOptions extends GlobalOptions {
  grant: string[];
  scope?: string;
  audience?: string;
  refreshGrace?: number;
  accessTokenTtl?: number;
  requireDpop?: boolean;
}

function spec(opts: SpecOptions): ClientSpec {
  return { grants: opts.grant, scope: opts.scope, audience: opts.audience, refreshGraceSeconds: opts.refreshGrace, accessTokenTtl: opts.accessTokenTtl, requireDpop: opts.requireDpop };
}

function specOptions(c: Command): Command {
  return c
    .option('--grant <grant>', 'an allowed grant type: password, refresh_token, client_credentials (repeatable)', collect, [])
    .option('--scope <scopes>', 'the allowed scopes, space-separated')
    .option('--audience <aud>', 'the aud of this client\'s access tokens (default: the client_id)')
    .option('--refresh-grace <seconds>', 'refresh-token retry grace window, 0-60 s', seconds('--refresh-grace'))
    .option('--access-token-ttl <seconds>', 'access-token lifetime for this client', seconds('--access-token-ttl'))
    .option('--require-dpop', 'every token request must carry a DPoP proof (RFC 9449)');
}

export function registerClients(program: Command, common: (c: Command) => Command): void {
  const clients = program.command('clients').description('manage OAuth clients');

  specOptions(common(clients.command('add <client_id>').description('add a client (prints a confidential client\'s secret once)')))
    .option('--public', 'a public client: no secret')
    .action(async (clientId: string, opts: SpecOptions & { public?: boolean }) => {
      const { client, secret } = await run(opts, (s) => s.clients.add(clientId, { ...spec(opts), public: opts.public ?? false }));
      const json = secret ? { client_id: client.client_id, client_secret: secret } : { client_id: client.client_id };
      output(opts, json, secret ? `added client ${clientId}\nclient_secret: ${secret}\n(shown once: store it now)` : `added public client ${clientId}`);
    });

  specOptions(common(clients.command('update <client_id>').description('change a client\'s grants, scopes, audience, lifetimes or DPoP policy')))
    .option('--no-require-dpop', 'token requests without a DPoP proof are accepted again')
    .action(async (clientId: string, opts: SpecOptions) => {
    const client = await run(opts, (s) => s.clients.update(clientId, spec(opts)));
    output(opts, clientJson(client), describe(client));
  });

  common(clients.command('list').description('list clients')).action(async (opts: GlobalOptions) => {
    const list = await run(opts, (s) => s.clients.list());
    output(opts, list.map(clientJson), () => table(['CLIENT_ID', 'TYPE', 'GRANTS', 'SCOPE', 'AUDIENCE'], list.map((c) => [c.client_id, c.public ? 'public' : 'confidential', c.grants.join(' '), c.scope, c.audience])));
  });

  common(clients.command('show <client_id>').description('show one client')).action(async (clientId: string, opts: GlobalOptions) => {
    const client = await run(opts, (s) => s.clients.show(clientId));
    output(opts, clientJson(client), describe(client));
  });

  common(clients.command('remove <client_id>').description('remove a client and revoke every token it holds')).action(async (clientId: string, opts: GlobalOptions) => {
    await run(opts, (s) => s.clients.remove(clientId));
    output(opts, { client_id: clientId, removed: true }, `removed client ${clientId}`);
  });

  common(clients.command('rotate-secret <client_id>').description('issue a new secret (the old one stops working at once)')).action(async (clientId: string, opts: GlobalOptions) => {
    const secret = await run(opts, (s) => s.clients.rotateSecret(clientId));
    output(opts, { client_id: clientId, client_secret: secret }, `new client_secret for ${clientId}: ${secret}\n(shown once: store it now)`);
  });
}
