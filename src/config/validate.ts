// From a merged raw object to a Config: the schema, the rules that tie keys together, and the
// default issuer. A failure is one line naming the key (and the variable that set it).
import net from 'node:net';
import { isObject, valueAt } from './json.js';
import { type Config, issuerSchema, parseDuration, schema } from './schema.js';

/** An invalid configuration: one line naming the key. The programs exit with status 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
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
