// The deny-list entry types `kid` and `client` (INTERFACE.md "Deny-list feed", issue 14 items 3
// and 4), from a real Tollgate's feed to a verifier connected over SSE. The server-side commands
// that write them (`keys remove`, `clients remove`) are tested with those commands; here the entries
// go into the server's deny list directly, and what is checked is the verifier's side: the entry
// arrives on the open stream and takes effect as it arrives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../helpers.js';
import { type Verifier, createVerifier } from '../../src/verifier/index.js';
import { type Tollgate, claims, codeOf, eventually, login, signAsTollgate, signRaw, startTollgate } from './fixtures.js';

let tg: Tollgate;
let verifier: Verifier;

beforeAll(async () => {
  tg = await startTollgate();
  await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
  verifier = createVerifier({
    issuer: tg.url,
    audience: 'todo-api',
    denyList: { url: `${tg.url}/deny-list`, clientId: tg.feed.client_id, clientSecret: tg.feed.client_secret, mode: 'stream' },
  });
  await verifier.ready();
  await eventually(() => expect(tg.t.app.hub.streams.size).toBeGreaterThan(0));
});

afterAll(async () => {
  verifier.close();
  await tg.close();
});

const feedRequests = () => tg.requests.filter((r) => r.url.startsWith('/deny-list')).length;
const inTenMinutes = () => Math.floor(Date.now() / 1000) + 600;

/**
 * Writes entries into Tollgate's deny list and waits until the check passes; returns the time it
 * took. Tollgate pushes the entry to the open stream during sync(); no new feed request may be
 * needed (that would be a reconnect or a catch-up, not the stream).
 */
async function denyAndWait(entries: Parameters<Tollgate['t']['app']['services']['denyList']['add']>[0], check: () => Promise<void>): Promise<number> {
  const requestsBefore = feedRequests();
  await tg.t.app.services.denyList.add(entries);
  const syncedAt = performance.now();
  await tg.t.app.services.denyList.sync();
  await eventually(check, 5000, 10);
  const elapsed = performance.now() - syncedAt;
  expect(feedRequests()).toBe(requestsBefore);
  return elapsed;
}

describe('a kid entry (a removed signing key)', () => {
  it('makes a connected verifier refuse every token the key signed within 1 s, and tokens of other keys still pass', async () => {
    const leaked = tg.t.app.services.keyring.signingKey();
    const before = await login(tg, 'alice', PASSWORD);
    await tg.t.app.services.keys.rotate('ES256');
    await tg.t.app.services.keyring.refresh();
    const after = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(verifier.verify(before.access_token))).toBe('resolved');
    expect(await codeOf(verifier.verify(after.access_token))).toBe('resolved');

    const elapsed = await denyAndWait([{ type: 'kid', value: leaked.kid, expires_at: inTenMinutes() }], async () => {
      expect(await codeOf(verifier.verify(before.access_token))).toBe('ERR_TOKEN_REVOKED');
    });
    // pushed over the open stream on sync(): loopback delivery, far inside the promised second
    expect(elapsed).toBeLessThanOrEqual(1000);

    // the key is dropped, not just the tokens seen so far: a fresh token forged with it fails too,
    // though Tollgate's JWKS (still cached by the verifier) publishes the key
    const forged = await signRaw({ alg: leaked.alg, kid: leaked.kid, typ: 'at+jwt' }, claims(tg, { roles: ['ADMIN'] }), leaked.privateKey);
    expect(await codeOf(verifier.verify(forged))).toBe('ERR_TOKEN_REVOKED');
    expect(await codeOf(verifier.verify(after.access_token))).toBe('resolved');
  });
});

describe('a client entry (a removed client)', () => {
  it("refuses exactly that client's tokens issued up to issued_before (the same second included)", async () => {
    const mobile = await tg.t.addClient('mobile', { audience: 'todo-api', grants: ['password'] });
    const web = await login(tg, 'alice', PASSWORD);
    const other = await login(tg, 'alice', PASSWORD, mobile);
    const iat = JSON.parse(Buffer.from(web.access_token.split('.')[1]!, 'base64url').toString()).iat as number;
    expect(await codeOf(verifier.verify(web.access_token))).toBe('resolved');

    await denyAndWait([{ type: 'client', value: tg.web.client_id, issued_before: iat, expires_at: inTenMinutes() }], async () => {
      expect(await codeOf(verifier.verify(web.access_token))).toBe('ERR_TOKEN_REVOKED');
    });
    const byWeb = (overrides: Record<string, unknown>) => signAsTollgate(tg, {}, claims(tg, { client_id: tg.web.client_id, ...overrides }));
    expect(await codeOf(verifier.verify(await byWeb({ iat })))).toBe('ERR_TOKEN_REVOKED');
    expect(await codeOf(verifier.verify(await byWeb({ iat: iat - 100 })))).toBe('ERR_TOKEN_REVOKED');
    // a client_credentials token: sub is the client id
    expect(await codeOf(verifier.verify(await byWeb({ sub: tg.web.client_id, iat })))).toBe('ERR_TOKEN_REVOKED');
    // issued after the entry (a client of that id added again): accepted
    expect(await codeOf(verifier.verify(await byWeb({ iat: iat + 1 })))).toBe('resolved');
    // another client's tokens, issued at the same time: accepted
    expect(await codeOf(verifier.verify(other.access_token))).toBe('resolved');
    expect(await codeOf(verifier.verify(await signAsTollgate(tg, {}, claims(tg, { client_id: 'mobile', iat }))))).toBe('resolved');
  });
});
