// RFC 6749 §4.3, the resource owner password credentials grant. Throttled per (username, address),
// username and address before argon2 runs (src/users/throttle.ts); an unknown user and a wrong
// password get the same answer after the same work.
import type { Audit } from '../../audit/audit.js';
import type { AccessTokens } from '../../tokens/accessTokens.js';
import type { RefreshFamilies } from '../../tokens/refreshFamilies.js';
import type { UserDirectory } from '../../users/directory.js';
import { HasherOverloaded, type PasswordHasher } from '../../users/passwords.js';
import type { LoginThrottle } from '../../users/throttle.js';
import { InvalidGrant, TemporarilyUnavailable, TooManyAttempts } from '../errors.js';
import type { ProtocolEvents } from '../events.js';
import { grantScope } from '../scope.js';
import { type GrantHandler, required } from './grant.js';

const WRONG = 'the username or password is wrong';

export interface PasswordGrantDeps {
  users: UserDirectory;
  throttle: LoginThrottle;
  hasher: PasswordHasher;
  audit: Audit;
  families: RefreshFamilies;
  accessTokens: AccessTokens;
  events: ProtocolEvents;
}

export function passwordGrant({ users, throttle, hasher, audit, families, accessTokens, events }: PasswordGrantDeps): GrantHandler {
  return {
    grantType: 'password',
    async handle({ params, client, ip, dpopJkt }) {
      const username = required(params, 'username');
      // no username has a NUL (UserService.validateUsername) and PostgreSQL text cannot hold one: refused
      // before the throttle and the audit trail write it (on PostgreSQL that write would fail: a 500)
      if (username.includes('\0')) throw new InvalidGrant(WRONG);
      const password = required(params, 'password');
      const scope = grantScope(params.get('scope'), client.scope);

      const user = await users.byUsername(username);
      // a name that matches no account may be anything typed into the field, a password included:
      // the audit trail gets a keyed hash of it, never the text
      const who = user ? username : audit.pseudonym(username);

      // counted as a failure until proven otherwise, so parallel guesses cannot all slip past the limit
      const attempt = await throttle.begin(username, ip);
      if (attempt.retryAfter > 0) {
        await audit.record({ type: 'sign_in.throttled', username: who, user_id: user?.id, client_id: client.id, ip, detail: { limit: attempt.limit } });
        throw new TooManyAttempts('too many failed sign-in attempts; try again later', attempt.retryAfter);
      }

      let ok: boolean;
      try {
        ok = user ? await hasher.verify(user.passwordHash, password) : await hasher.verifyDummy(password);
      } catch (e) {
        if (!(e instanceof HasherOverloaded)) throw e;
        await attempt.withdraw(); // a busy server is no evidence of guessing
        throw new TemporarilyUnavailable('the server is busy; try again shortly', 1);
      }
      if (!user || !ok || !user.enabled) {
        await audit.record({ type: 'sign_in.failure', username: who, user_id: user?.id, client_id: client.id, ip, detail: { reason: !user ? 'unknown user' : !ok ? 'wrong password' : 'disabled' } });
        throw new InvalidGrant(!user ? 'unknown user' : !ok ? 'wrong password' : 'the user is disabled');
      }
      await attempt.succeeded(user.id);

      const roles = await users.roles(user.id);
      const { sid, refreshToken, status } = await families.start(user.id, client, scope, dpopJkt);
      const ttl = client.lifetimes.accessTokenSeconds;
      const { token } = await accessTokens.issue({ sub: user.id, audience: client.audience, clientId: client.id, scope, roles, sid, status, ttlSeconds: ttl, jkt: dpopJkt });
      await audit.record({ type: 'sign_in.success', username, user_id: user.id, client_id: client.id, ip, detail: { sid } });
      events.tokenIssued('password');
      return { access_token: token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: ttl, refresh_token: refreshToken, scope };
    },
  };
}
