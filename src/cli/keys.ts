// tollgate keys list|jwks|generate|rotate|retire|remove|import|export-public
import fs from 'node:fs';
import type { Command } from 'commander';
import { ALGORITHMS, type SigningAlgorithm, isAlgorithm, KeyError } from '../keys/signingKey.js';
import type { SigningKeyRow } from '../store/schema.js';
import { CliError, type GlobalOptions, output, table, withServices } from './context.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function keyJson(k: SigningKeyRow) {
  return { kid: k.kid, alg: k.alg, state: k.state, created_at: iso(k.created_at), activated_at: iso(k.activated_at), retired_at: iso(k.retired_at), removed_at: iso(k.removed_at) };
}

async function run<T>(opts: GlobalOptions, fn: Parameters<typeof withServices<T>>[1]): Promise<T> {
  try {
    return await withServices(opts, fn);
  } catch (e) {
    if (e instanceof KeyError) throw new CliError(e.message);
    throw e;
  }
}

function algorithm(value: string): SigningAlgorithm {
  if (!isAlgorithm(value)) throw new CliError(`--alg must be one of ${ALGORITHMS.join(', ')}`);
  return value;
}

export function registerKeys(program: Command, common: (c: Command) => Command): void {
  const keys = program.command('keys').description('manage signing keys');

  common(keys.command('list').description('list signing keys and their states')).action(async (opts: GlobalOptions) => {
    const rows = await run(opts, (s) => s.keys.repo.all());
    output(opts, rows.map(keyJson), () =>
      table(['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'RETIRED'], rows.map((k) => [k.kid, k.alg, k.state, iso(k.created_at) ?? '', iso(k.activated_at) ?? '-', iso(k.retired_at) ?? '-'])),
    );
  });

  common(keys.command('jwks').description('print the public JWK Set')).action(async (opts: GlobalOptions) => {
    const jwks = await run(opts, (s) => s.keys.jwks());
    process.stdout.write(`${JSON.stringify(jwks, null, 2)}\n`);
  });

  common(keys.command('generate').description('add a pre-published next key'))
    .option('--alg <alg>', `ES256 (default), EdDSA, RS256 or PS256`, algorithm)
    .action(async (opts: GlobalOptions & { alg?: SigningAlgorithm }) => {
      const row = await run(opts, async (s) => {
        const r = await s.keys.generate(opts.alg ?? s.config.keys.algorithm);
        await s.audit.record({ type: 'key.generated', detail: { kid: r.kid, alg: r.alg } });
        return r;
      });
      output(opts, keyJson(row), `generated ${row.alg} key ${row.kid} (next: published now, signing after the next rotation)`);
    });

  common(keys.command('rotate').description('next -> active, active -> retired, and a new next key')).action(async (opts: GlobalOptions) => {
    const result = await run(opts, async (s) => {
      const r = await s.keys.rotate(s.config.keys.algorithm);
      if (!r) throw new CliError('another process rotated the keys at the same moment; run `tollgate keys list`');
      await s.audit.record({ type: 'key.rotated', detail: { ...r } });
      return r;
    });
    output(opts, result, `rotated: ${result.activated} is active, ${result.retired} retired, ${result.next} is the next key`);
  });

  common(keys.command('retire <kid>').description('retire a next key (it stays published until its tokens expire)')).action(async (kid: string, opts: GlobalOptions) => {
    await run(opts, async (s) => {
      await s.keys.retire(kid);
      await s.audit.record({ type: 'key.retired', detail: { kid } });
    });
    output(opts, { kid, state: 'retired' }, `retired ${kid}`);
  });

  common(keys.command('remove <kid>').description('unpublish a key: every token it signed stops verifying'))
    .option('--force', 'remove even though tokens it signed may still be live (revokes them)')
    .action(async (kid: string, opts: GlobalOptions & { force?: boolean }) => {
      await run(opts, async (s) => {
        await s.keys.remove(kid, { force: opts.force ?? false });
        await s.audit.record({ type: 'key.removed', detail: { kid, forced: opts.force ?? false } });
      });
      output(opts, { kid, state: 'removed' }, `removed ${kid}: it is no longer published, and tokens it signed no longer verify`);
    });

  common(keys.command('import <file>').description('import a private key (PEM PKCS#8/SEC1/PKCS#1 or JWK) as the next key'))
    .option('--alg <alg>', 'the algorithm it signs with (default: the JWK\'s alg, else what the key type allows, the configured one first)', algorithm)
    .action(async (file: string, opts: GlobalOptions & { alg?: SigningAlgorithm }) => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const row = await run(opts, async (s) => {
        const r = await s.keys.import(text, { alg: opts.alg, preferred: s.config.keys.algorithm });
        await s.audit.record({ type: 'key.imported', detail: { kid: r.kid, alg: r.alg } });
        return r;
      });
      output(opts, keyJson(row), `imported ${row.alg} key ${row.kid} as the next key`);
    });

  common(keys.command('export-public <kid>').description('print a key\'s public JWK')).action(async (kid: string, opts: GlobalOptions) => {
    const row = await run(opts, (s) => s.keys.repo.find(kid));
    if (!row) throw new CliError(`no key ${kid}`);
    process.stdout.write(`${JSON.stringify(JSON.parse(row.public_jwk), null, 2)}\n`);
  });
}
