// A feed whose head moved below the verifier's cursor (a store restored from a backup, `db copy`)
// answers 400 to that cursor (INTERFACE.md): the verifier reloads the whole feed rather than
// retrying the same cursor, going stale, and failing closed for good.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { DenyListMirror } from '../../src/verifier/denyList.js';
import { eventually } from './fixtures.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

it('reloads the feed from the start when its cursor is refused as past the head', async () => {
  const expiresAt = Math.floor(Date.now() / 1000) + 600;
  const seen: string[] = [];
  let restored = false;
  const server = http.createServer((req, res) => {
    const after = new URL(req.url ?? '/', 'http://x').searchParams.get('after');
    seen.push(after ?? '');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!restored) return json(200, { cursor: '99', entries: [] });
    if (after !== null && Number(after) > 5) return json(400, { error: 'invalid_request', error_description: 'the cursor is past the newest entry' });
    if (after === null) return json(200, { cursor: '5', entries: [{ type: 'jti', value: 'revoked-after-restore', expires_at: expiresAt }] });
    return json(200, { cursor: '5', entries: [] });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/deny-list`;
  const mirror = new DenyListMirror({ url, clientId: 'api', clientSecret: 's', mode: 'poll', pollInterval: 0.05 }, { now: () => Date.now(), clockToleranceSeconds: 0 });
  closers.push(() => mirror.close());
  await mirror.whenLoaded();
  restored = true;
  await eventually(() => expect(mirror.isDenied({ jti: 'revoked-after-restore' })).toBe(true), 3000);
  expect(seen).toContain('99');
  expect(mirror.fresh).toBe(true);
});
