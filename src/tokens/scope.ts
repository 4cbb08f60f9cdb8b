// Scope syntax (RFC 6749 §3.3): space-delimited scope-tokens of %x21 / %x23-5B / %x5D-7E. The rule
// the protocol checks requests against and client administration checks allowed scopes against,
// and the one rule for what may be granted (a grant's request, a refresh's narrowing).
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}

/**
 * What may be granted: what was asked for (default: all that is allowed), never beyond `allowed`
 * (the client's scopes at a grant, RFC 6749 §3.3; the family's at a refresh, §6).
 */
export function narrowScope(requested: readonly string[] | undefined, allowed: string): { scope: string } | { beyond: string[] } {
  const allowedSet = new Set(allowed.split(' ').filter(Boolean));
  if (requested === undefined) return { scope: [...allowedSet].join(' ') };
  const beyond = requested.filter((s) => !allowedSet.has(s));
  return beyond.length > 0 ? { beyond } : { scope: requested.join(' ') };
}
