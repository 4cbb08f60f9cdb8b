// Issue 14 across a fleet: two instances on one PostgreSQL database. A user disabled after a
// lifetime change, a removed client and a removed key, each done on one instance, reach the other
// instance's introspection and a verifier connected to its SSE stream within 1 s (NOTIFY), and the
// entries last until the last token they deny has expired.
import { afterEach, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../../src/verifier/index.js';
import { FakeClock, PASSWORD, decodeJwt } from '../helpers.js';
import { describePostgres } from '../testDatabase.js';
import { type Creds, type Fleet, form, startFleet, waitFor } from './fleet.js';

const introspect = async (url: string, client: Creds, token: string) => (await (await form(url, '/introspect', client, { token })).json()) as { active: boolean };
const token = async (url: string, client: Creds, body: Record<string, string>) => {
  const res = await form(url, '/token', client, body);
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token?: string };
};

describePostgres('revocation reach across two instances on one PostgreSQL database (issue 14)', () => {
  let fleet: Fleet;
  let verifier: Verifier | undefined;
  afterEach(async () => {
    verifier?.close();
    verifier = undefined;
    await fleet?.close();
  });

  /** Two instances on a clock that starts at real time, so a real verifier accepts their tokens. */
  async function start() {
    const clock = new FakeClock(Date.now());
    fleet = await startFleet(2, { clock, config: { denyList: { heartbeatSeconds: 1 } } });
    const [a, b] = fleet.apps;
    await a!.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
    const api = await a!.addClient('todo-api', { grants: ['client_credentials'] });
    return { clock, a: a!, b: b!, api };
  }

  async function verifierOn(url: string, api: Creds, issuer: string) {
    verifier = createVerifier({ issuer, audience: 'todo-api', jwksUri: `${url}/.well-known/jwks.json`, denyList: { url: `${url}/deny-list`, clientId: api.client_id, clientSecret: api.client_secret ?? '', mode: 'stream', maxStaleness: 10 } });
    await verifier.ready();
    return verifier;
  }

  const refusedWithinOneSecond = async (v: Verifier, tokens: string[], since: number) => {
    await waitFor('the verifier to refuse every token', 5000, async () => {
      for (const t of tokens) if ((await v.verify(t).then(() => 'ok', (e: { code?: string }) => e.code)) !== 'ERR_TOKEN_REVOKED') return false;
      return true;
    }, 10);
    expect(performance.now() - since).toBeLessThan(1000);
  };

  it('disable after a TTL change, on B: the token issued on A stays refused 6 minutes on, at A', async () => {
    const { clock, a, b, api } = await start();
    const web = await a.addClient('web', { grants: ['password'], audience: 'todo-api', accessTokenTtl: 3600 });
    const { access_token } = await token(fleet.urls[0]!, web, { grant_type: 'password', username: 'alice', password: PASSWORD });
    await b.app.services.clients.update('web', { accessTokenTtl: 60 });
    await b.app.services.users.setEnabled('alice', false);
    clock.advance(6 * 60);
    await a.app.tick();
    await b.app.tick();
    await waitFor('A to see the user denied', 2000, async () => !(await introspect(fleet.urls[0]!, api, access_token)).active);
    const exp = Number(decodeJwt(access_token).payload.exp);
    const sub = (await (await fetch(`${fleet.urls[0]}/deny-list`, { headers: { Authorization: `Basic ${Buffer.from(`todo-api:${api.client_secret}`).toString('base64')}` } })).json()) as { entries: Array<{ type: string; expires_at: number }> };
    expect(sub.entries.find((e) => e.type === 'sub')?.expires_at).toBeGreaterThanOrEqual(exp);
  });

  it('a client removed on B: its tokens issued on A are refused by a verifier on A within 1 s, and inactive at A', async () => {
    const { a, b, api } = await start();
    const web = await a.addClient('web', { grants: ['password', 'refresh_token'], audience: 'todo-api' });
    const svc = await a.addClient('svc', { grants: ['client_credentials'], audience: 'todo-api' });
    const v = await verifierOn(fleet.urls[0]!, api, a.config.issuer);
    const signedIn = await token(fleet.urls[0]!, web, { grant_type: 'password', username: 'alice', password: PASSWORD });
    const refreshed = await token(fleet.urls[0]!, web, { grant_type: 'refresh_token', refresh_token: signedIn.refresh_token! });
    const machine = await token(fleet.urls[0]!, svc, { grant_type: 'client_credentials' });
    const tokens = [signedIn.access_token, refreshed.access_token, machine.access_token];
    for (const t of tokens) await v.verify(t);
    const removedAt = performance.now();
    await b.app.services.clients.remove('web');
    await b.app.services.clients.remove('svc');
    await refusedWithinOneSecond(v, tokens, removedAt);
    for (const t of tokens) expect(await introspect(fleet.urls[0]!, api, t)).toEqual({ active: false });
  });

  it('a key removed on B: a verifier on A refuses what it signed within 1 s', async () => {
    const { a, b, api } = await start();
    const web = await a.addClient('web', { grants: ['password'], audience: 'todo-api' });
    const v = await verifierOn(fleet.urls[0]!, api, a.config.issuer);
    const { access_token } = await token(fleet.urls[0]!, web, { grant_type: 'password', username: 'alice', password: PASSWORD });
    await v.verify(access_token);
    const kid = String(decodeJwt(access_token).header.kid);
    await b.app.services.keys.rotate('ES256');
    const removedAt = performance.now();
    await b.app.services.keys.remove(kid, { force: true });
    await refusedWithinOneSecond(v, [access_token], removedAt);
  });
});
