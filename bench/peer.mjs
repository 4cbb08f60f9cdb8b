// The side-by-side peer: node-oidc-provider (v9) configured like Tollgate for the paths they share:
// an ES256 signing key, JWT access tokens (RFC 9068 profile) for client_credentials through a
// resource indicator, introspection and revocation on, one confidential client using
// client_secret_basic. Loopback only. Prints one JSON line {port, clientId, clientSecret, resource}
// on stdout once it listens; SIGTERM stops it.
//
// v9 refuses to introspect or revoke JWT access tokens (lib/shared/reject_structured_tokens.js), so
// the driver introspects and revokes its opaque client_credentials tokens (asked for without a
// resource), kept in memory: the cheapest store the peer has. Its default memory adapter is an LRU
// of about 2,000 entries, so a revocation pool would mostly be evicted before use (a revocation of
// an unknown token is a cheap 200); it gets the same adapter over a store that keeps everything.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

class KeepAll {
  #map = new Map();
  get(key) {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (e.expiry !== undefined && e.expiry <= Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key, value, { maxAge } = {}) {
    this.#map.set(key, { value, expiry: typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined });
    return this;
  }
  has(key) {
    return this.get(key) !== undefined;
  }
  delete(key) {
    return this.#map.delete(key);
  }
}
const store = new KeepAll();

const RESOURCE = 'urn:tollgate-bench:api';
const clientId = 'bench-service';
const clientSecret = crypto.randomBytes(32).toString('base64url');

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      scope: 'api:read api:write',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['api:read', 'api:write'],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  ttl: { ClientCredentials: 300, AccessToken: 300 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // no resource asked for: an opaque token (the only kind v9 introspects and revokes)
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: () => ({
        scope: 'api:read api:write',
        audience: 'bench-api',
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
// warnings about development defaults would go to stdout, which carries our one JSON line
provider.on('server_error', (_ctx, err) => process.stderr.write(`peer: server_error ${err?.message}\n`));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ port, clientId, clientSecret, resource: RESOURCE, issuer })}\n`);
process.once('SIGTERM', () => server.close(() => process.exit(0)));
process.once('SIGINT', () => server.close(() => process.exit(0)));
