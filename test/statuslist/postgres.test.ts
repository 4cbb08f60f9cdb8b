// Issue 18 on PostgreSQL: two instances of a fleet serve the same bits, and a list survives
// `db copy` from SQLite.
import crypto from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { migrate } from '../../src/store/database.js';
import { COPY_ORDER, copyStore } from '../../src/store/copy.js';
import { FakeClock, basic, createTestApp, passwordGrant } from '../helpers.js';
import { type Fleet, form, startFleet, waitFor } from '../fleet/fleet.js';
import { createTestDatabase, describePostgres } from '../testDatabase.js';
import { statusOf } from './helpers.js';
import { StatusList } from '@sd-jwt/jwt-status-list';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The status of a token in the list served by the instance at `base`. */
async function statusAt(base: string, token: string): Promise<number> {
  const ref = statusOf(token);
  const res = await fetch(`${base}${new URL(ref.uri).pathname}`);
  if (res.status !== 200) throw new Error(`status list answered ${res.status}`);
  const payload = JSON.parse(Buffer.from((await res.text()).split('.')[1] ?? '', 'base64url').toString()) as { status_list: { lst: string } };
  return StatusList.decompressStatusList(payload.status_list.lst, 1).getStatus(ref.idx);
}

describePostgres('Token Status List on PostgreSQL', () => {
  it('two instances serve the same bits: a revocation on one is in the other’s list within a second or two', async () => {
    const fleet: Fleet = await startFleet(2);
    cleanups.push(() => fleet.close());
    const [a, b] = fleet.apps;
    const [urlA = '', urlB = ''] = fleet.urls;
    await a?.addUser('alice');
    const web = await a!.addClient('web', { grants: ['password', 'refresh_token'] });
    const svc = await a!.addClient('svc', { grants: ['client_credentials'] });
    const session = (await (await form(urlA, '/token', web, { grant_type: 'password', username: 'alice', password: 'correct horse battery staple' })).json()) as { access_token: string; refresh_token: string };
    const ccA = ((await (await form(urlA, '/token', svc, { grant_type: 'client_credentials' })).json()) as { access_token: string }).access_token;
    const ccB = ((await (await form(urlB, '/token', svc, { grant_type: 'client_credentials' })).json()) as { access_token: string }).access_token;
    // blocks reserved by two instances never overlap
    expect(statusOf(ccA)).not.toEqual(statusOf(ccB));
    for (const url of fleet.urls) for (const tok of [session.access_token, ccA, ccB]) expect(await statusAt(url, tok)).toBe(0);
    // both instances have rendered the list: now revoke on B, read on A
    expect((await form(urlB, '/revoke', web, { token: session.refresh_token })).status).toBe(200);
    expect((await form(urlB, '/revoke', svc, { token: ccA })).status).toBe(200);
    await waitFor('instance A to serve the revocations made on B', 5000, async () => (await statusAt(urlA, session.access_token)) === 1 && (await statusAt(urlA, ccA)) === 1);
    expect(await statusAt(urlA, ccB)).toBe(0);
    expect(await statusAt(urlB, ccB)).toBe(0);
    void b;
  });

  it('a list survives a db copy from SQLite to PostgreSQL', async () => {
    const kek = crypto.randomBytes(32);
    const clock = new FakeClock(Date.now());
    const source = await createTestDatabase('sqlite');
    const target = await createTestDatabase('postgres');
    cleanups.push(() => source.drop(), () => target.drop());
    const s1 = source.open();
    const before = await createTestApp({ store: s1, kek, clock, config: { database: { url: source.url } } });
    await before.addUser('alice');
    const web = await before.addClient('web', { grants: ['password', 'refresh_token'] });
    const svc = await before.addClient('svc', { grants: ['client_credentials'] });
    const alice = (await passwordGrant(before, web, 'alice').expect(200)).body as { access_token: string; refresh_token: string };
    const cc = (await before.request.post('/token').set('Authorization', basic(svc)).type('form').send({ grant_type: 'client_credentials' }).expect(200)).body.access_token as string;
    await before.request.post('/revoke').set('Authorization', basic(svc)).type('form').send({ token: cc }).expect(200);
    await before.close();

    const to = target.open();
    cleanups.push(() => s1.close().then(() => to.close()));
    await migrate(to);
    const counts = await copyStore(s1, to, { now: clock.now() });
    expect(COPY_ORDER.map((c) => c.table)).toEqual(expect.arrayContaining(['status_lists', 'status_slots']));
    expect(counts.status_slots).toBeGreaterThanOrEqual(2);

    const after = await createTestApp({ store: to, kek, clock, config: { database: { url: target.url } } });
    cleanups.push(() => after.close());
    const served = async (token: string) => {
      const ref = statusOf(token);
      const res = await after.request.get(new URL(ref.uri).pathname).buffer(true).parse((r, cb) => { let s = ''; r.on('data', (c: Buffer) => (s += c.toString())); r.on('end', () => cb(null, s)); });
      const payload = JSON.parse(Buffer.from(String(res.body).split('.')[1] ?? '', 'base64url').toString()) as { status_list: { lst: string } };
      return StatusList.decompressStatusList(payload.status_list.lst, 1).getStatus(ref.idx);
    };
    expect(await served(cc)).toBe(1);
    expect(await served(alice.access_token)).toBe(0);
    // the family kept its slot: revoking it on PostgreSQL sets the copied index
    await after.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token: alice.refresh_token }).expect(200);
    expect(await served(alice.access_token)).toBe(1);
  });
});
