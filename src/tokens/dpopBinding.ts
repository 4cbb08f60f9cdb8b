// RFC 9449 §5: a refresh-token family started with a DPoP proof is bound to that key for its whole
// life (the RFC requires it for public clients; Tollgate does it for every client). A family
// started without a proof stays unbound: a later proof gets a DPoP-bound access token (§5 allows
// it) but never binds the family, or a thief holding a stolen unbound refresh token could bind it
// to his own key and lock out its owner, whose next refresh would then be refused as a binding
// mismatch instead of being detected as reuse.

/** Why a refresh of a family bound to `boundTo` is refused for a proof of `presented`; undefined when it may go on. */
export function bindingMismatch(boundTo: string | null, presented: string | undefined): 'no proof' | 'other key' | undefined {
  if (boundTo === null) return undefined;
  if (presented === undefined) return 'no proof';
  return presented === boundTo ? undefined : 'other key';
}
