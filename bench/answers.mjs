// Requests and what a right answer to them is: form bodies, Basic credentials, the checks a probe
// or a check after a run applies, so the figures are of real work.

export const form = (o) => new URLSearchParams(o).toString();
export const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
export const expectJson = (what, pred) => (json) => (json !== undefined && pred(json) ? undefined : `expected ${what}, got ${JSON.stringify(json)?.slice(0, 200)}`);
const isJwt = (s) => typeof s === 'string' && s.split('.').length === 3;
export const tokenResponse = expectJson('a token response', (j) => isJwt(j.access_token) && j.token_type === 'Bearer');
export const active = expectJson('{"active": true, ...}', (j) => j.active === true);

/** After a revocation run: one of its tokens, introspected, must be inactive (the run did revoke). */
export const inactiveAt = (url, headers) => async (token) => {
  const r = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token }) });
  const json = await r.json().catch(() => undefined);
  return r.status === 200 && json?.active === false ? undefined : `a revoked token is still active: ${r.status} ${JSON.stringify(json)}`;
};

/** One request before the run: the path answers what it should, so the figures are of real work. */
export async function probe(request, body, expect) {
  const headers = request.method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded', ...request.headers } : request.headers;
  const r = await fetch(request.url, { method: request.method, headers, body });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the status decides
  }
  if (r.status !== 200) return `${r.status} ${text.slice(0, 200)}`;
  return expect ? expect(json) : undefined;
}
