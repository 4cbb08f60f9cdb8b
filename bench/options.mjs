// The run's settings: the command line (npm run bench -- [options]), which paths and sections it
// asks for, where the project is, and where progress goes (stderr; the report goes to stdout).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCH = path.join(ROOT, 'bench');

const USAGE = `usage: npm run bench -- [options]
  --quick              a smoke run: 2 s per path (default 5 s)
  --duration S         seconds measured per path and per server it is compared with (after a 1 s warm-up)
  --connections N      concurrent connections (default 50; the password grant uses fewer, see README)
  --json [FILE]        also write the results as JSON (default FILE: bench-results.json)
  --only a,b           run only these paths or sections (${'password refresh client_credentials introspect_access introspect_refresh revoke_access revoke_refresh jwks deny_list limits peer verifier dpop workers postgres'})
  --skip a,b           leave these out
  --cpu-prof [DIR]     profile the single Tollgate server (node --cpu-prof) and print where its time went
  --log-level LEVEL    the server's log level (default: the configured one)
  --postgres URL       a PostgreSQL server for the postgres section (default: TOLLGATE_TEST_POSTGRES_URL);
                       the bench creates a database of its own there and drops it at the end
  --keep               keep the temporary directory (database, server logs)`;

function parseArgs(argv) {
  const o = { seconds: 5, warmup: 1, connections: 50, json: undefined, only: undefined, skip: new Set(), cpuProf: undefined, logLevel: undefined, keep: false, quick: false, postgres: undefined };
  const value = (i, name) => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const optional = () => (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : undefined);
    if (a === '--quick') {
      o.quick = true;
      o.seconds = 2;
    } else if (a === '--duration') o.seconds = Number(value(i++, a));
    else if (a === '--connections') o.connections = Number(value(i++, a));
    else if (a === '--json') o.json = optional() ?? 'bench-results.json';
    else if (a === '--only') o.only = new Set(value(i++, a).split(','));
    else if (a === '--skip') o.skip = new Set(value(i++, a).split(','));
    else if (a === '--cpu-prof') o.cpuProf = optional() ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-prof-'));
    else if (a === '--log-level') o.logLevel = value(i++, a);
    else if (a === '--postgres') o.postgres = value(i++, a);
    else if (a === '--keep') o.keep = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (!(o.seconds >= 1) || !Number.isInteger(o.seconds)) throw new Error('--duration takes whole seconds ≥ 1');
  if (!(o.connections >= 1)) throw new Error('--connections takes a number ≥ 1');
  return o;
}

export const opts = parseArgs(process.argv.slice(2));
export const wanted = (key) => (!opts.only || opts.only.has(key)) && !opts.skip.has(key);
export const note = (s) => process.stderr.write(`${s}\n`);
