// Builds the domain services over one store: used by the HTTP app, the CLI and tests alike.
import { Audit } from './audit/audit.js';
import { UsernamePseudonyms } from './audit/pseudonym.js';
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
import { type ProtocolEvents, type Services, noEvents } from './oauth/services.js';
import type { Store } from './store/database.js';
import { AccessHorizon } from './tokens/accessHorizon.js';
import { AccessTokens } from './tokens/accessTokens.js';
import { RefreshTokenMinter } from './tokens/refreshTokens.js';
import { SpendLedger } from './tokens/spendLedger.js';
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

export function createServices(options: ServiceOptions): Services {
  const { config, store, clock, logger } = options;
  const db = store.db;
  const kek = options.kek ?? loadKeyEncryptionKey(config.keys.encryptionKey, config.keys.encryptionKeyFile);
  // names typed at sign-in are stored as HMACs under this key (the audit trail, the throttle's counters)
  const pseudonyms = new UsernamePseudonyms(deriveKey(kek, 'username pseudonym'));
  const audit = new Audit({ db, clock, logger, pseudonyms });
  const keyring = new Keyring({ db, kek });
  const denyList = new DenyList({ db, clock, logger });
  const hasher = new PasswordHasher(config.passwords);
  const events = options.events ?? noEvents;
  const tolerance = config.accessTokens.clockToleranceSeconds;
  // nonces are an HMAC under a KEK-derived key: every instance sharing the KEK accepts them
  const dpop = new DpopProofs({
    policy: config.dpop,
    clockToleranceSeconds: tolerance,
    clock,
    nonces: new DpopNonces(deriveKey(kek, 'dpop nonce'), config.dpop.nonceLifetimeSeconds, clock),
    replay: new DpopReplayCache(db, config.dpop.iatWindowSeconds + tolerance),
    onRefused: (reason) => events.dpopRefused(reason),
  });
  const horizon = new AccessHorizon({ db, clock, defaultTtlSeconds: config.accessTokens.ttlSeconds, clockToleranceSeconds: config.accessTokens.clockToleranceSeconds });
  return {
    config,
    db,
    clock,
    logger,
    audit,
    keys: new KeyManager({ db, kek, clock, denyList, horizon }),
    keyring,
    accessTokens: new AccessTokens({ keyring, clock, issuer: config.issuer, clockToleranceSeconds: config.accessTokens.clockToleranceSeconds }),
    refreshTokens: new RefreshTokenMinter(deriveKey(kek, 'refresh-token successor')),
    spends: new SpendLedger(),
    denyList,
    hasher,
    throttle: new LoginThrottle({ db, clock, policy: config.throttle, pseudonyms }),
    users: new UserService({ db, clock, hasher, denyList, audit, horizon }),
    clients: new ClientService({ db, clock, audit, denyList, horizon, defaultTtlSeconds: config.accessTokens.ttlSeconds }),
    events,
    horizon,
    dpop,
  };
}
