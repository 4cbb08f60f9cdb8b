// The verifier's Token Status List check (issue 18): a revoked token is refused once the list is
// refetched after its ttl, a list that cannot be fetched fails closed past maxStaleness, and a
// status uri outside the issuer is never fetched (SSRF).
import { afterEach, describe, expect, it } from 'vitest';
import { type Verifier, type VerifierOptions, createVerifier } from '../../src/verifier/index.js';
import { PASSWORD, basic } from '../helpers.js';
import { type Tollgate, claims, codeOf, eventually, login, signAsTollgate, startTollgate } from '../verifier/fixtures.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tollgate(): Promise<Tollgate> {
  // a 1-second ttl: a verifier refetches the list a second after it fetched it
  const tg = await startTollgate({ config: { statusList: { ttlSeconds: 1 } } });
  await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
  let closed = false;
  const close = tg.close.bind(tg);
  tg.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  cleanups.push(() => tg.close());
  return tg;
}

function verifier(tg: Tollgate, statusList: VerifierOptions['statusList']): Verifier {
  const v = createVerifier({ issuer: tg.url, audience: 'todo-api', ...(statusList ? { statusList } : {}) });
  cleanups.push(() => v.close());
  return v;
}

const listFetches = (tg: Tollgate) => tg.requests.filter((r) => r.url.startsWith('/statuslists/')).length;

describe('verifier: statusList', () => {
  it('refuses a revoked token with ERR_TOKEN_REVOKED once its list is refetched, from any language’s point of view the same bit', async () => {
    const tg = await tollgate();
    const v = verifier(tg, { maxStaleness: 30 });
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    expect(listFetches(tg)).toBe(1);
    // cached: verifying again within ttl fetches nothing
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    expect(listFetches(tg)).toBe(1);
    await tg.t.request.post('/revoke').set('Authorization', basic(tg.web)).type('form').send({ token: access_token }).expect(200);
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_TOKEN_REVOKED'), 5000);
  });

  it('fails closed with ERR_STATUS_LIST_UNAVAILABLE when the list cannot be fetched within maxStaleness', async () => {
    const tg = await tollgate();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const v = verifier(tg, { maxStaleness: 1 });
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    // the JWK Set stays cached; the status list cannot be refetched once the server is gone
    await tg.close();
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_STATUS_LIST_UNAVAILABLE'), 5000);
  });

  it('never fetches a status uri outside the issuer’s /statuslists/ (SSRF), and refuses the token', async () => {
    const tg = await tollgate();
    const v = verifier(tg, {});
    for (const uri of ['http://169.254.169.254/latest/meta-data', `${tg.url}/deny-list`, `${tg.url}/statuslists/../token`, `${tg.url.replace('127.0.0.1', 'localhost')}/statuslists/1`, `${tg.url}/statuslists/1?x=1`]) {
      const token = await signAsTollgate(tg, {}, claims(tg, { status: { status_list: { idx: 0, uri } } }));
      const before = tg.requests.length;
      expect(await codeOf(v.verify(token))).toBe('ERR_TOKEN_MALFORMED');
      expect(tg.requests.slice(before).filter((r) => !r.url.startsWith('/.well-known/'))).toEqual([]);
    }
  });

  it('fails closed on a list the issuer does not serve (404): ERR_STATUS_LIST_UNAVAILABLE', async () => {
    const tg = await tollgate();
    const v = verifier(tg, {});
    const token = await signAsTollgate(tg, {}, claims(tg, { status: { status_list: { idx: 0, uri: `${tg.url}/statuslists/2` } } }));
    expect(await codeOf(v.verify(token))).toBe('ERR_STATUS_LIST_UNAVAILABLE');
  });

  it('without statusList, does not fetch any list', async () => {
    const tg = await tollgate();
    const v = verifier(tg, undefined);
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    expect(listFetches(tg)).toBe(0);
  });
});
