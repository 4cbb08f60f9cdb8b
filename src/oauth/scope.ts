// Scope strings (RFC 6749 §3.3): space-delimited scope-tokens of %x21 / %x23-5B / %x5D-7E.
import { SCOPE_TOKEN, narrowScope } from '../tokens/scope.js';
import { InvalidScope } from './errors.js';

export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(' ').filter((s) => s !== '');
  for (const p of parts) if (!SCOPE_TOKEN.test(p)) throw new InvalidScope('the scope contains an invalid character');
  return [...new Set(parts)];
}

/** The granted scope: what was asked for (default: everything allowed), never beyond the client's scopes. */
export function grantScope(requested: string | undefined, allowed: string): string {
  const granted = narrowScope(parseScope(requested), allowed);
  if ('beyond' in granted) throw new InvalidScope(`scope ${granted.beyond.join(' ')} is not within the client's allowed scopes`);
  return granted.scope;
}
