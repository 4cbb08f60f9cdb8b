// Where the raw configuration comes from: config/default.json < config/local.json < --config FILE
// (or TOLLGATE_CONFIG) < environment variables < --database, then overrides (tests).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Json, deepMerge, isObject, setPath } from './json.js';
import type { Config } from './schema.js';
import { ConfigError, validateConfig } from './validate.js';

/** The project root: where config/, keys/ and data/ live. Relative paths in config files resolve here. */
export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  // this module runs from src/config/ (tests) or dist/src/config/ (built): walk up to package.json
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

/** Environment variables that always work, with the config key each one sets. */
const ENV: Array<{ name: string; key: string; parse: (v: string) => unknown }> = [
  { name: 'TOLLGATE_PORT', key: 'server.port', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  { name: 'TOLLGATE_HOST', key: 'server.host', parse: (v) => v },
  { name: 'TOLLGATE_ISSUER', key: 'issuer', parse: (v) => v },
  { name: 'TOLLGATE_DATABASE', key: 'database.url', parse: (v) => v },
  { name: 'TOLLGATE_KEY_ENCRYPTION_KEY', key: 'keys.encryptionKey', parse: (v) => v },
  { name: 'TOLLGATE_LOG_LEVEL', key: 'log.level', parse: (v) => v },
  { name: 'TOLLGATE_WORKERS', key: 'server.workers', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
];

function readJsonFile(file: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`config: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`config: ${file} is not valid JSON`);
  }
  if (!isObject(parsed)) throw new ConfigError(`config: ${file} must hold a JSON object`);
  // a file in a config/ folder (the project's) resolves against the folder above; any other file
  // (say /etc/tollgate.json) against its own folder
  const dir = path.dirname(path.resolve(file));
  return resolvePaths(parsed, path.basename(dir) === 'config' ? path.dirname(dir) : dir);
}

/** File paths in a config file are relative to the project root (the folder above config/). */
function resolvePaths(json: Json, root: string): Json {
  const out = structuredClone(json);
  const db = out.database;
  if (isObject(db) && typeof db.url === 'string') db.url = resolveDatabase(db.url, root);
  const keys = out.keys;
  if (isObject(keys) && typeof keys.encryptionKeyFile === 'string') keys.encryptionKeyFile = path.resolve(root, keys.encryptionKeyFile);
  return out;
}

export function resolveDatabase(url: string, base: string): string {
  if (url === ':memory:' || /^postgres(ql)?:\/\//.test(url)) return url;
  return path.resolve(base, url);
}

export interface LoadOptions {
  /** --config FILE */
  configFile?: string | undefined;
  /** --database PATH (CLI); relative to the working directory */
  database?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Extra values, e.g. from tests; applied last. */
  overrides?: Json;
  /** Read config/default.json and config/local.json from here (default: the project root). */
  root?: string;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const root = options.root ?? PROJECT_ROOT;
  let raw = readJsonFile(path.join(root, 'config', 'default.json'));
  const local = path.join(root, 'config', 'local.json');
  if (fs.existsSync(local)) raw = deepMerge(raw, readJsonFile(local));
  const file = options.configFile ?? env.TOLLGATE_CONFIG;
  if (file) raw = deepMerge(raw, readJsonFile(path.resolve(file)));
  const sources = new Map<string, string>();
  for (const { name, key, parse } of ENV) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, key === 'database.url' ? resolveDatabase(value, process.cwd()) : parse(value));
    sources.set(key, name);
  }
  if (options.database) {
    setPath(raw, 'database.url', resolveDatabase(options.database, process.cwd()));
    sources.set('database.url', '--database');
  }
  if (options.overrides) raw = deepMerge(raw, options.overrides);
  return validateConfig(raw, sources);
}
