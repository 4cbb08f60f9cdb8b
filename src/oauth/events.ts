// Counters the protocol layer reports; the HTTP layer's metrics implement them (no-ops by default).
export interface ProtocolEvents {
  tokenIssued(grant: string): void;
  refreshReuse(): void;
  refreshRetry(): void;
  revoked(kind: 'access_token' | 'refresh_token'): void;
  /** A DPoP proof refused at the token endpoint, by the check that failed (a bounded set). */
  dpopRefused(reason: string): void;
}

export const noEvents: ProtocolEvents = { tokenIssued() {}, refreshReuse() {}, refreshRetry() {}, revoked() {}, dpopRefused() {} };
