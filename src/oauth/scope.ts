// Scope strings (RFC 6749 §3.3): space-delimited scope-tokens of %x21 / %x23-5B / %x5D-7E.
import { SCOPE_TOKEN } from '../tokens/scope.js';
import { InvalidScope } from './errors.js';

export { isScopeToken } from '../tokens/scope.js';

export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(' ').filter((s) => s !== '');
  for (const p of parts) if (!SCOPE_TOKEN.test(p)) throw new InvalidScope('the scope contains an invalid character');
  return [...new Set(parts)];
}

/** The granted scope: what was asked for (default: everything allowed), never beyond `allowed`. */
export function grantScope(requested: string | undefined, allowed: string, what = "the client's allowed scopes"): string {
  const allowedSet = new Set(allowed.split(' ').filter(Boolean));
  const asked = parseScope(requested);
  if (asked === undefined) return [...allowedSet].join(' ');
  const extra = asked.filter((s) => !allowedSet.has(s));
  if (extra.length > 0) throw new InvalidScope(`scope ${extra.join(' ')} is not within ${what}`);
  return asked.join(' ');
}
