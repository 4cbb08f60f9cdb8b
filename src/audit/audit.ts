// The audit trail: who did what, when, from where. Never a secret: callers pass identifiers only.
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { AuditRepository, type NewAuditEvent } from '../store/audit.js';
import type { UsernamePseudonyms } from './pseudonym.js';
import type { Db } from '../store/database.js';

export type AuditType =
  | 'sign_in.success'
  | 'sign_in.failure'
  | 'sign_in.throttled'
  | 'refresh.retry'
  | 'refresh.reuse_detected'
  | 'token.revoked'
  | 'user.created'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.password_changed'
  | 'user.roles_changed'
  | 'user.logout'
  | 'client.created'
  | 'client.updated'
  | 'client.removed'
  | 'client.secret_rotated'
  | 'key.generated'
  | 'key.imported'
  | 'key.rotated'
  | 'key.retired'
  | 'key.removed'
  | 'dpop.binding_mismatch';

export interface AuditEvent extends NewAuditEvent {
  type: AuditType;
}

export class Audit {
  constructor(private readonly deps: { db: Db; clock: Clock; logger?: Logger; pseudonyms: UsernamePseudonyms }) {}

  /**
   * How the trail names a username that matches no account: a keyed hash, never the text typed
   * (it may be a password). Equal names give equal values; `tollgate audit --user NAME` finds them.
   */
  pseudonym(username: string): string {
    return this.deps.pseudonyms.of(username);
  }

  /** Records an event; a failure to record is logged, never turned into a failed request. */
  async record(event: AuditEvent, db: Db = this.deps.db): Promise<void> {
    try {
      await new AuditRepository(db).insert(event, this.deps.clock.now());
    } catch (e) {
      this.deps.logger?.error({ err: e, type: event.type }, 'audit event not recorded');
    }
  }
}
