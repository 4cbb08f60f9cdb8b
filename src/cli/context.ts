// What every CLI command shares: config and store from --config/--database, services, output,
// and errors that print one line and exit non-zero.
import { Audit } from '../audit/audit.js';
import { systemClock } from '../clock.js';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { KeyEncryptionError } from '../keys/encryption.js';
import { createLogger } from '../logger.js';
import type { Domain as Services } from '../services.js';
import { createServices } from '../services.js';
import { type Store, migrate, openStore } from '../store/database.js';

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface GlobalOptions {
  config?: string;
  database?: string;
  json?: boolean;
}

export function loadCliConfig(opts: GlobalOptions): Config {
  return loadConfig({ configFile: opts.config, database: opts.database });
}

/** Opens the store (migrated), builds the services, runs `fn`, closes the store. */
export async function withServices<T>(opts: GlobalOptions, fn: (services: Services, store: Store) => Promise<T>): Promise<T> {
  const config = loadCliConfig(opts);
  const store = openStore(config.database.url, config.database);
  try {
    await migrate(store);
    // CLI logs go to stderr, errors only: stdout is for the command's output
    const logger = createLogger('error', process.stderr);
    const services = createServices({ config, store, clock: systemClock, logger });
    return await fn(services, store);
  } finally {
    await store.close().catch(() => undefined);
  }
}

export { Audit };

/** Prints `data` as JSON with --json, else the human-readable text. */
export function output(opts: GlobalOptions, data: unknown, text: string | (() => string)): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else process.stdout.write(`${typeof text === 'function' ? text() : text}\n`);
}

/** A table with aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** One line on stderr and the right exit status: 2 for configuration errors, 1 otherwise. */
export function reportError(e: unknown): number {
  const message = e instanceof Error ? e.message : String(e);
  const code = e instanceof ConfigError ? 2 : e instanceof CliError ? e.exitCode : 1;
  const prefix = e instanceof ConfigError || e instanceof KeyEncryptionError ? 'tollgate: ' : 'tollgate: error: ';
  process.stderr.write(`${prefix}${message.split('\n')[0]}\n`);
  return code;
}
