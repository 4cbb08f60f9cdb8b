// Configuration: config/default.json < config/local.json < --config FILE (or TOLLGATE_CONFIG)
// < environment variables. Validated once here; everything below receives a typed Config.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The project root: where config/, keys/ and data/ live. Relative paths in config files resolve here. */
export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  // src/config.ts runs from src/ (tests) or dist/src/ (built): walk up to package.json
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "30d" → seconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
}

const LOOPBACK = new Set(['localhost', '[::1]', '::1']);

/** Plain http:// only where nothing but this machine can listen in: localhost, 127.0.0.0/8, ::1. */
function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(hostname);
}

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type SigningAlgorithm = (typeof ALGORITHMS)[number];

const issuerSchema = z
  .string()
  // abort: the refinements below parse the URL, and zod runs them even after a failure
  .refine((s) => URL.canParse(s), { message: 'expected an absolute URL', abort: true })
  .refine((s) => {
    const url = new URL(s);
    return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
  }, 'expected an https:// URL (http:// only for a loopback host)')
  .refine((s) => {
    const url = new URL(s);
    return !url.search && !url.hash;
  }, 'expected no query or fragment')
  .transform((s) => s.replace(/\/+$/, ''));

const schema = z.strictObject({
  // absent: built from the listen address (defaultIssuer)
  issuer: issuerSchema.optional(),
  server: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    workers: z.number().int().min(1).max(64),
    trustProxy: z.boolean(),
    bodyLimitBytes: positiveInt,
    maxParameters: positiveInt,
    headersTimeoutMs: positiveInt,
    requestTimeoutMs: positiveInt,
    keepAliveTimeoutMs: positiveInt,
    shutdownTimeoutMs: positiveInt,
    maxConnections: positiveInt,
  }),
  database: z.strictObject({
    url: z.string().min(1),
    busyTimeoutMs: nonNegativeInt,
    poolSize: positiveInt,
  }),
  keys: z.strictObject({
    algorithm: z.enum(ALGORITHMS),
    encryptionKeyFile: z.string().min(1),
    encryptionKey: z
      .string()
      .refine((s) => /^[A-Za-z0-9_-]{43}$/.test(s) && Buffer.from(s, 'base64url').length === 32, 'expected 32 bytes in base64url')
      .optional(),
    rotateEvery: z
      .string()
      .nullable()
      .refine((s) => s === null || (parseDuration(s) ?? 0) > 0, 'expected a duration like "30d", "12h" or null'),
    reloadIntervalMs: positiveInt,
    jwksMaxAgeSeconds: nonNegativeInt,
  }),
  accessTokens: z.strictObject({
    ttlSeconds: z.number().int().min(1).max(86400),
    clockToleranceSeconds: z.number().int().min(0).max(300),
  }),
  refreshTokens: z.strictObject({
    idleTtlSeconds: positiveInt,
    absoluteTtlSeconds: positiveInt,
    retryGraceSeconds: z.number().int().min(0).max(60),
  }),
  passwords: z.strictObject({
    memoryCostKiB: z.number().int().min(1024),
    timeCost: z.number().int().min(1),
    parallelism: z.number().int().min(1),
    maxConcurrentHashes: positiveInt,
    maxQueuedHashes: nonNegativeInt,
  }),
  throttle: z.strictObject({
    windowSeconds: positiveInt,
    maxFailuresPerUsername: positiveInt,
    maxFailuresPerIp: positiveInt,
    maxFailuresPerUsernameAndIp: positiveInt,
  }),
  denyList: z.strictObject({
    syncIntervalMs: positiveInt,
    pruneIntervalSeconds: positiveInt,
    heartbeatSeconds: positiveInt,
    maxStreamsPerClient: positiveInt,
    maxStreams: positiveInt,
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }),
});

export type Config = Omit<z.infer<typeof schema>, 'issuer'> & { issuer: string };
type Json = Record<string, unknown>;

/** An invalid configuration: one line naming the key. The programs exit with status 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
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

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function setPath(target: Json, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (!isObject(next)) node[part] = {};
    node = node[part] as Json;
  }
  node[parts[parts.length - 1] as string] = value;
}

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

/** Validates a raw config object; the error names the first bad key (and the variable that set it). */
export function validateConfig(raw: unknown, sources: Map<string, string> = new Map()): Config {
  const result = schema.safeParse(raw);
  if (result.success) {
    const config = { ...result.data, issuer: result.data.issuer ?? defaultIssuer(result.data.server, sources) };
    // node:http refuses this pair as createServer() options; assigned afterwards (applyServerLimits), nothing checks it
    if (config.server.headersTimeoutMs > config.server.requestTimeoutMs) {
      throw new ConfigError('config: server.headersTimeoutMs must not exceed server.requestTimeoutMs');
    }
    if (config.refreshTokens.idleTtlSeconds > config.refreshTokens.absoluteTtlSeconds) {
      throw new ConfigError('config: refreshTokens.idleTtlSeconds must not exceed refreshTokens.absoluteTtlSeconds');
    }
    if (config.denyList.maxStreamsPerClient > config.denyList.maxStreams) {
      throw new ConfigError('config: denyList.maxStreamsPerClient must not exceed denyList.maxStreams');
    }
    // SSE streams hold their connections: at the stream cap, ordinary requests must still get in
    if (config.denyList.maxStreams >= config.server.maxConnections) {
      throw new ConfigError('config: denyList.maxStreams must be lower than server.maxConnections (requests need connections beside the streams)');
    }
    // each next key is published one rotation interval before it signs: caches must refresh within it
    const rotateEvery = config.keys.rotateEvery === null ? undefined : parseDuration(config.keys.rotateEvery);
    if (rotateEvery !== undefined && config.keys.jwksMaxAgeSeconds >= rotateEvery) {
      throw new ConfigError('config: keys.jwksMaxAgeSeconds must be shorter than keys.rotateEvery (JWKS caches must see a next key before it signs)');
    }
    return config;
  }
  const issue = result.error.issues[0];
  const key = issue ? issue.path.join('.') : '(root)';
  const source = sources.get(key);
  const where = source ? `${key} (from ${source})` : key;
  const message = issue?.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : (issue?.message ?? 'invalid');
  const got = issue ? valueAt(raw, issue.path) : undefined;
  const shown = got === undefined || isObject(got) || key === 'keys.encryptionKey' ? '' : `, got ${JSON.stringify(got)}`;
  return fail(`config: invalid ${where}: ${message}${shown}`);
}

/**
 * Without a configured issuer, the address the server listens on, so that discovery from that
 * address works: RFC 8414 §3.3 clients (oauth4webapi, openid-client) refuse metadata whose
 * `issuer` is not the URL they fetched it from. All interfaces (0.0.0.0, ::) give the loopback
 * address of the same family; a host other clients reach needs TOLLGATE_ISSUER (https://).
 */
function defaultIssuer(server: { host: string; port: number }, sources: Map<string, string>): string {
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' || server.host === '[::]' ? '::1' : server.host;
  const literal = net.isIPv6(host) ? `[${host}]` : host;
  const candidate = URL.canParse(`http://${literal}:${server.port}`) ? new URL(`http://${literal}:${server.port}`).origin : undefined;
  const issuer = candidate === undefined ? undefined : issuerSchema.safeParse(candidate);
  if (issuer?.success) return issuer.data;
  const from = sources.get('server.host');
  const where = from ? `server.host ${server.host} (from ${from})` : `server.host ${server.host}`;
  return fail(`config: invalid issuer: none is set, and ${where} is not a loopback address that http:// may name: set TOLLGATE_ISSUER (or issuer in a config file) to the https:// URL clients use`);
}

function fail(message: string): never {
  throw new ConfigError(message.replace(/\s+/g, ' '));
}

function valueAt(raw: unknown, p: PropertyKey[]): unknown {
  let node: unknown = raw;
  for (const part of p) {
    if (!isObject(node)) return undefined;
    node = node[String(part)];
  }
  return node;
}
