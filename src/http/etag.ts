// If-None-Match (RFC 9110 §13.1.2): a list of entity tags, weak comparison, or `*`.
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const want = opaque(etag);
  return ifNoneMatch.split(',').some((tag) => opaque(tag) === want);
}
