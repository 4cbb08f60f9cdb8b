// RFC 6749 §4.3, the resource owner password credentials grant. Throttled per (username, address),
// username and address before argon2 runs (src/users/throttle.ts); an unknown user and a wrong
// password get the same answer after the same work.
import crypto from 'node:crypto';
import { RefreshTokenRepository } from '../../store/refreshTokens.js';
import { UserRepository } from '../../store/users.js';
import { RefreshTokenMinter } from '../../tokens/refreshTokens.js';
import { HasherOverloaded } from '../../users/passwords.js';
import { InvalidGrant, TemporarilyUnavailable, TooManyAttempts } from '../errors.js';
import { grantScope } from '../scope.js';
import { accessHorizon, accessTokenTtl } from '../services.js';
import { type GrantHandler, required } from './grant.js';

const WRONG = 'the username or password is wrong';

export const passwordGrant: GrantHandler = {
  grantType: 'password',
  async handle({ params, client, ip, dpopJkt }, services) {
    const username = required(params, 'username');
    // no username has a NUL (UserService.validateUsername) and PostgreSQL text cannot hold one: refused
    // before the throttle and the audit trail write it (on PostgreSQL that write would fail: a 500)
    if (username.includes('\0')) throw new InvalidGrant(WRONG);
    const password = required(params, 'password');
    const scope = grantScope(params.get('scope'), client.scope);
    const { throttle, hasher, audit, clock, config } = services;

    const users = new UserRepository(services.db);
    const user = await users.byUsername(username);
    // a name that matches no account may be anything typed into the field, a password included:
    // the audit trail gets a keyed hash of it, never the text
    const who = user ? username : audit.pseudonym(username);

    // counted as a failure until proven otherwise, so parallel guesses cannot all slip past the limit
    const attempt = await throttle.begin(username, ip);
    if (attempt.retryAfter > 0) {
      await audit.record({ type: 'sign_in.throttled', username: who, user_id: user?.id, client_id: client.client_id, ip, detail: { limit: attempt.limit } });
      throw new TooManyAttempts('too many failed sign-in attempts; try again later', attempt.retryAfter);
    }

    let ok: boolean;
    try {
      ok = user ? await hasher.verify(user.password_hash, password) : await hasher.verifyDummy(password);
    } catch (e) {
      if (!(e instanceof HasherOverloaded)) throw e;
      await attempt.withdraw(); // a busy server is no evidence of guessing
      throw new TemporarilyUnavailable('the server is busy; try again shortly', 1);
    }
    if (!user || !ok || user.enabled !== 1) {
      await audit.record({ type: 'sign_in.failure', username: who, user_id: user?.id, client_id: client.client_id, ip, detail: { reason: !user ? 'unknown user' : !ok ? 'wrong password' : 'disabled' } });
      throw new InvalidGrant(WRONG);
    }
    await attempt.succeeded(user.id);

    const roles = await users.roles(user.id);
    const now = clock.now();
    const ttl = accessTokenTtl(services, client);
    const idle = (client.refresh_idle_ttl ?? config.refreshTokens.idleTtlSeconds) * 1000;
    const absolute = (client.refresh_absolute_ttl ?? config.refreshTokens.absoluteTtlSeconds) * 1000;
    const refreshToken = services.refreshTokens.mint();
    const sid = crypto.randomUUID();
    await services.db.transaction().execute(async (trx) => {
      const repo = new RefreshTokenRepository(trx);
      await repo.insertFamily({ id: sid, user_id: user.id, client_id: client.client_id, scope, created_at: now, expires_at: now + absolute, access_expires_at: accessHorizon(now, ttl).extendTo, revoked_at: null, revoked_reason: null, dpop_jkt: dpopJkt ?? null });
      await repo.insertToken({ token_hash: RefreshTokenMinter.hash(refreshToken), family_id: sid, parent_hash: null, created_at: now, expires_at: now + Math.min(idle, absolute), spent_at: null });
    });
    const { token } = await services.accessTokens.issue({ sub: user.id, audience: client.audience, clientId: client.client_id, scope, roles, sid, ttlSeconds: ttl, jkt: dpopJkt });
    await audit.record({ type: 'sign_in.success', username, user_id: user.id, client_id: client.client_id, ip, detail: { sid } });
    services.events.tokenIssued('password');
    return { access_token: token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, refresh_token: refreshToken, scope };
  },
};
