// Issue 14, end to end: a verifier connected to the SSE stream refuses, within 1 s, the tokens of a
// removed client (password-grant, refreshed and client_credentials ones) and every token signed by
// a removed key (here an imported one, the documented way to revoke what a leaked key signed).
import { exportPKCS8, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Verifier, createVerifier } from '../../src/verifier/index.js';
import { PASSWORD, basic } from '../helpers.js';
import { type Tollgate, codeOf, eventually, login } from './fixtures.js';
import { startTollgate } from './fixtures.js';

let tg: Tollgate;
let verifier: Verifier | undefined;

beforeEach(async () => {
  tg = await startTollgate({ config: { denyList: { heartbeatSeconds: 1 } } });
  await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
});
afterEach(async () => {
  verifier?.close();
  verifier = undefined;
  await tg.close();
});

async function connectedVerifier(): Promise<Verifier> {
  verifier = createVerifier({ issuer: tg.url, audience: 'todo-api', denyList: { url: `${tg.url}/deny-list`, clientId: tg.feed.client_id, clientSecret: tg.feed.client_secret, mode: 'stream', maxStaleness: 10 } });
  await verifier.ready();
  await eventually(() => expect(tg.requests.some((r) => r.url === '/deny-list/events')).toBe(true));
  return verifier;
}

/** Waits until verify() fails with `code`, and returns how long after `since` that was. */
async function refusedWithin(v: Verifier, token: string, code: string, since: number): Promise<number> {
  await eventually(async () => expect(await codeOf(v.verify(token))).toBe(code), 5000, 10);
  return performance.now() - since;
}

describe('a connected verifier (stream mode) within 1 s', () => {
  it('refuses every token of a removed client: password grant, refreshed and client_credentials', async () => {
    const svc = await tg.t.addClient('svc', { audience: 'todo-api', grants: ['client_credentials'] });
    const v = await connectedVerifier();
    const signedIn = await login(tg, 'alice', PASSWORD);
    const refreshed = (await tg.t.request.post('/token').set('Authorization', basic(tg.web)).type('form').send({ grant_type: 'refresh_token', refresh_token: signedIn.refresh_token })).body as { access_token: string };
    const machine = (await tg.t.request.post('/token').set('Authorization', basic(svc)).type('form').send({ grant_type: 'client_credentials' })).body as { access_token: string };
    for (const token of [signedIn.access_token, refreshed.access_token, machine.access_token]) expect(await codeOf(v.verify(token))).toBe('resolved');

    const removedAt = performance.now();
    await tg.t.app.services.clients.remove('web');
    await tg.t.app.services.clients.remove('svc');
    for (const token of [signedIn.access_token, refreshed.access_token, machine.access_token]) {
      expect(await refusedWithin(v, token, 'ERR_TOKEN_REVOKED', removedAt)).toBeLessThan(1000);
    }
  });

  it('refuses a token signed by an imported key once the key is removed with --force', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    for (const next of await tg.t.app.services.keys.repo.byState('next')) await tg.t.app.services.keys.retire(next.kid);
    const imported = await tg.t.app.services.keys.import(await exportPKCS8(privateKey));
    await tg.t.app.services.keys.rotate('ES256'); // the imported key joined as next: now active
    await tg.t.app.services.keyring.refresh();
    const v = await connectedVerifier();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(JSON.parse(Buffer.from(access_token.split('.')[0]!, 'base64url').toString()).kid).toBe(imported.kid);
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    await tg.t.app.services.keys.rotate('ES256');
    await tg.t.app.services.keyring.refresh();
    const removedAt = performance.now();
    await tg.t.app.services.keys.remove(imported.kid, { force: true });
    expect(await refusedWithin(v, access_token, 'ERR_TOKEN_REVOKED', removedAt)).toBeLessThan(1000);
    // the new active key's tokens still pass
    expect(await codeOf(v.verify((await login(tg, 'alice', PASSWORD)).access_token))).toBe('resolved');
  });
});
