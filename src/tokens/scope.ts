// Scope syntax (RFC 6749 §3.3): space-delimited scope-tokens of %x21 / %x23-5B / %x5D-7E. The rule
// the protocol checks requests against and client administration checks allowed scopes against.
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}
