// Seeding through the built modules (dist/), in the driver process, while no server holds the
// store: the user and clients, and the pools of tokens the write paths consume (every refresh and
// every revocation gets a token nobody has used). Tokens are minted straight into the store, as
// the password grant would have left them, so filling a pool costs no argon2 and no HTTP.
import crypto from 'node:crypto';

const dist = (p) => new URL(`../dist/src/${p}`, import.meta.url).href;

export const USERNAME = 'bench-user';
export const SCOPE = 'api:read api:write';
export const AUDIENCE = 'bench-api';

/**
 * Opens the store named by `env` (TOLLGATE_DATABASE, TOLLGATE_KEY_ENCRYPTION_KEY, ...), migrated and
 * with its first signing keys, exactly as the server would find it. No background jobs.
 */
export async function openBench(env) {
  const { loadConfig } = await import(dist('config.js'));
  const { openStore, dialectOf } = await import(dist('store/database.js'));
  const { createApp } = await import(dist('app.js'));
  const { createLogger } = await import(dist('logger.js'));
  const config = loadConfig({ env });
  const store = openStore(config.database.url, config.database);
  const app = await createApp({ config, store, logger: createLogger('error', process.stderr), jobs: false });
  const { RefreshTokenRepository } = await import(dist('store/refreshTokens.js'));
  const { RefreshTokenMinter } = await import(dist('tokens/refreshTokens.js'));
  return {
    config,
    dialectOf,
    services: app.services,
    RefreshTokenRepository,
    RefreshTokenMinter,
    async close() {
      await app.close();
      await store.close();
    },
  };
}

/** The user and the two clients every path uses. */
export async function seedPrincipals(bench) {
  const { services } = bench;
  const password = crypto.randomBytes(18).toString('base64url');
  const user = await services.users.add(USERNAME, password, ['reader', 'writer']);
  // the user-facing app: password and refresh_token grants
  const app = await services.clients.add('bench-app', { grants: ['password', 'refresh_token'], scope: SCOPE, audience: AUDIENCE });
  // a service: client_credentials, and the confidential client that introspects and reads the deny list
  const service = await services.clients.add('bench-service', { grants: ['client_credentials'], scope: SCOPE, audience: AUDIENCE });
  return {
    user: { id: user.id, username: USERNAME, password },
    app: { id: 'bench-app', secret: app.secret },
    service: { id: 'bench-service', secret: service.secret },
  };
}

/** `count` fresh refresh tokens, each the first of its own family (as after a password grant). */
export async function mintRefreshTokens(bench, { userId, clientId, count }) {
  const { services, config, RefreshTokenRepository, RefreshTokenMinter, dialectOf } = bench;
  const now = services.clock.now();
  const absolute = config.refreshTokens.absoluteTtlSeconds * 1000;
  const idle = config.refreshTokens.idleTtlSeconds * 1000;
  const tokens = [];
  // SQLite: one row a statement is cheap in-process. PostgreSQL: a round trip a statement would
  // make a pool of 50k tokens take minutes, so rows go in 500 to a statement (the same rows).
  const postgres = dialectOf(services.db) === 'postgres';
  for (let done = 0; done < count; ) {
    const n = Math.min(postgres ? 500 : 1000, count - done);
    const families = [];
    const rows = [];
    for (let i = 0; i < n; i++) {
      const token = services.refreshTokens.mint();
      const sid = crypto.randomUUID();
      // access_expires_at one TTL ahead, as the password grant leaves it (accessHorizon)
      families.push({ id: sid, user_id: userId, client_id: clientId, scope: SCOPE, created_at: now, expires_at: now + absolute, access_expires_at: now + 2 * config.accessTokens.ttlSeconds * 1000, revoked_at: null, revoked_reason: null });
      rows.push({ token_hash: RefreshTokenMinter.hash(token), family_id: sid, parent_hash: null, created_at: now, expires_at: now + Math.min(idle, absolute), spent_at: null });
      tokens.push(token);
    }
    await services.db.transaction().execute(async (trx) => {
      if (postgres) {
        await trx.insertInto('refresh_token_families').values(families).execute();
        await trx.insertInto('refresh_tokens').values(rows).execute();
        return;
      }
      const repo = new RefreshTokenRepository(trx);
      for (let i = 0; i < n; i++) {
        // each family with its Token Status List slot, as the password grant writes it (issue 18)
        const slot = await services.statusLists.familySlot(trx, families[i]);
        await repo.insertFamily({ ...families[i], status_list: slot.listId, status_idx: slot.idx });
        await repo.insertToken(rows[i]);
      }
    });
    done += n;
  }
  return tokens;
}

/** `count` access tokens signed with the active key: the user's (with a sid) or the service's. */
export async function mintAccessTokens(bench, { sub, clientId, sid, count }) {
  const { services, config } = bench;
  const tokens = [];
  for (let done = 0; done < count; ) {
    const n = Math.min(256, count - done);
    const batch = await Promise.all(
      Array.from({ length: n }, () =>
        services.accessTokens.issue({ sub, audience: AUDIENCE, clientId, scope: SCOPE, ttlSeconds: config.accessTokens.ttlSeconds, ...(sid ? { sid, roles: ['reader'] } : {}) }),
      ),
    );
    for (const { token } of batch) tokens.push(token);
    done += n;
  }
  return tokens;
}

/** A deny list of `count` live jti entries, so the feed has a realistic page to serve. */
export async function seedDenyList(bench, count) {
  const { services, config } = bench;
  const exp = Math.floor(services.clock.now() / 1000) + config.accessTokens.ttlSeconds + config.accessTokens.clockToleranceSeconds + 3600;
  await services.denyList.add(Array.from({ length: count }, () => ({ type: 'jti', value: crypto.randomUUID(), expires_at: exp })));
}
