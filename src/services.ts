// The composition root's domain: every domain service over one store, each built with exactly what
// it uses. The HTTP app (app.ts) and the CLI take from it what they need; tests reach into it.
// Nothing below the root receives it whole.
import { Audit } from './audit/audit.js';
import { UsernamePseudonyms } from './audit/pseudonym.js';
import { ClientAuthenticator } from './clients/authentication.js';
import type { ClientDefaults } from './clients/client.js';
import { ClientService } from './clients/clients.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { DenyList } from './denylist/denyList.js';
import { DpopNonces } from './dpop/nonces.js';
import { DpopProofs } from './dpop/proof.js';
import { DpopReplayCache } from './dpop/replay.js';
import { deriveKey, loadKeyEncryptionKey } from './keys/encryption.js';
import { KeyManager } from './keys/keyManager.js';
import { Keyring } from './keys/keyring.js';
import type { Logger } from './logger.js';
import { type ProtocolEvents, noEvents } from './oauth/events.js';
import { GRANT_TYPES } from './oauth/grants/grant.js';
import { StatusLists } from './statuslist/statusLists.js';
import type { Db, Store } from './store/database.js';
import { AccessHorizon } from './tokens/accessHorizon.js';
import { AccessTokenRevocations } from './tokens/accessTokenRevocations.js';
import { AccessTokens } from './tokens/accessTokens.js';
import { RefreshFamilies } from './tokens/refreshFamilies.js';
import { RefreshTokenMinter } from './tokens/refreshTokens.js';
import { SpendLedger } from './tokens/spendLedger.js';
import { UserDirectory } from './users/directory.js';
import { PasswordHasher } from './users/passwords.js';
import { LoginThrottle } from './users/throttle.js';
import { UserService } from './users/users.js';

export interface ServiceOptions {
  config: Config;
  store: Store;
  clock: Clock;
  logger: Logger;
  events?: ProtocolEvents;
  /** The key-encryption key; default: from config (TOLLGATE_KEY_ENCRYPTION_KEY or the key file). */
  kek?: Buffer;
}

export interface Domain {
  config: Config;
  db: Db;
  clock: Clock;
  logger: Logger;
  events: ProtocolEvents;
  audit: Audit;
  keys: KeyManager;
  keyring: Keyring;
  accessTokens: AccessTokens;
  accessTokenRevocations: AccessTokenRevocations;
  refreshTokens: RefreshTokenMinter;
  families: RefreshFamilies;
  spends: SpendLedger;
  denyList: DenyList;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  directory: UserDirectory;
  users: UserService;
  clients: ClientService;
  clientAuth: ClientAuthenticator;
  horizon: AccessHorizon;
  statusLists: StatusLists;
  /** RFC 9449 proofs at the token endpoint. */
  dpop: DpopProofs;
}

export function clientDefaults(config: Config): ClientDefaults {
  return {
    accessTokenSeconds: config.accessTokens.ttlSeconds,
    refreshIdleSeconds: config.refreshTokens.idleTtlSeconds,
    refreshAbsoluteSeconds: config.refreshTokens.absoluteTtlSeconds,
    retryGraceSeconds: config.refreshTokens.retryGraceSeconds,
  };
}

export function createServices(options: ServiceOptions): Domain {
  const { config, store, clock, logger } = options;
  const db = store.db;
  const clockToleranceSeconds = config.accessTokens.clockToleranceSeconds;
  const kek = options.kek ?? loadKeyEncryptionKey(config.keys.encryptionKey, config.keys.encryptionKeyFile);
  // names typed at sign-in are stored as HMACs under this key (the audit trail, the throttle's counters)
  const pseudonyms = new UsernamePseudonyms(deriveKey(kek, 'username pseudonym'));
  const audit = new Audit({ db, clock, logger, pseudonyms });
  const keyring = new Keyring({ db, kek });
  const denyList = new DenyList({ db, clock, logger });
  const hasher = new PasswordHasher(config.passwords);
  const horizon = new AccessHorizon({ db, clock, defaultTtlSeconds: config.accessTokens.ttlSeconds, clockToleranceSeconds });
  const refreshTokens = new RefreshTokenMinter(deriveKey(kek, 'refresh-token successor'));
  const spends = new SpendLedger();
  const events = options.events ?? noEvents;
  // nonces are an HMAC under a KEK-derived key: every instance sharing the KEK accepts them
  const dpop = new DpopProofs({
    policy: config.dpop,
    clockToleranceSeconds,
    clock,
    nonces: new DpopNonces(deriveKey(kek, 'dpop nonce'), config.dpop.nonceLifetimeSeconds, clock),
    replay: new DpopReplayCache(db, config.dpop.iatWindowSeconds + clockToleranceSeconds),
    onRefused: (reason) => events.dpopRefused(reason),
  });
  const statusLists = new StatusLists({ db, clock, keyring, issuer: config.issuer, ttlSeconds: config.statusList.ttlSeconds, listSize: config.statusList.listSize, clockToleranceSeconds });
  const families = new RefreshFamilies({ db, clock, minter: refreshTokens, spends, denyList, audit, clockToleranceSeconds, statusLists, logger });
  const defaults = clientDefaults(config);
  const clients = new ClientService({ db, clock, audit, denyList, horizon, families, statusLists, defaults, grantTypes: GRANT_TYPES });
  const clientAuth = new ClientAuthenticator({ db, defaults });
  clients.onChanged((id) => clientAuth.forget(id));
  return {
    config,
    db,
    clock,
    logger,
    events,
    dpop,
    audit,
    keys: new KeyManager({ db, kek, clock, denyList, horizon }),
    keyring,
    accessTokens: new AccessTokens({ keyring, clock, issuer: config.issuer, clockToleranceSeconds }),
    accessTokenRevocations: new AccessTokenRevocations({ db, denyList, audit, statusLists, clockToleranceSeconds }),
    refreshTokens,
    families,
    spends,
    denyList,
    hasher,
    throttle: new LoginThrottle({ db, clock, policy: config.throttle, pseudonyms }),
    directory: new UserDirectory({ db }),
    users: new UserService({ db, clock, hasher, denyList, audit, horizon, families, statusLists }),
    clients,
    clientAuth,
    horizon,
    statusLists,
  };
}
