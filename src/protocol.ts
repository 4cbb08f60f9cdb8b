// The protocol over the domain: each grant built with exactly what it uses and registered with the
// token endpoint, revocation and introspection likewise (the composition root's second step).
import type { ProtocolEvents } from './oauth/events.js';
import { clientCredentialsGrant } from './oauth/grants/clientCredentials.js';
import { passwordGrant } from './oauth/grants/password.js';
import { refreshTokenGrant } from './oauth/grants/refreshToken.js';
import { type Introspect, introspection } from './oauth/introspection.js';
import { type Revoke, revocation } from './oauth/revocation.js';
import { TokenEndpoint } from './oauth/tokenEndpoint.js';
import type { Domain } from './services.js';

export interface Protocol {
  tokenEndpoint: TokenEndpoint;
  revoke: Revoke;
  introspect: Introspect;
}

export function createProtocol(d: Domain): Protocol {
  const { families, accessTokens, audit } = d;
  // read at call time, so the counters can be swapped on a running app (tests count them)
  const events: ProtocolEvents = {
    tokenIssued: (grant) => d.events.tokenIssued(grant),
    refreshReuse: () => d.events.refreshReuse(),
    refreshRetry: () => d.events.refreshRetry(),
    revoked: (kind) => d.events.revoked(kind),
    dpopRefused: (reason) => d.events.dpopRefused(reason),
  };
  const tokenEndpoint = new TokenEndpoint([
    passwordGrant({ users: d.directory, throttle: d.throttle, hasher: d.hasher, audit, families, accessTokens, events }),
    refreshTokenGrant({ families, accessTokens, audit, events }),
    clientCredentialsGrant({ accessTokens, statusLists: d.statusLists, events }),
  ]);
  return {
    tokenEndpoint,
    revoke: revocation({ families, accessTokens, revocations: d.accessTokenRevocations, events }),
    introspect: introspection({ accessTokens, denyList: d.denyList, families, issuer: d.config.issuer }),
  };
}
