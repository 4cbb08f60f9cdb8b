// A fleet: two Tollgate instances on one PostgreSQL database keep every guarantee of one process.
// Runs under `npm run test:postgres`; skipped on SQLite (fails instead when CI requires Postgres).
import { afterEach, describe, expect, it } from 'vitest';
import { AuditRepository } from '../../src/store/audit.js';
import { DenyListRepository } from '../../src/store/denyList.js';
import { FakeClock, PASSWORD, decodeJwt } from '../helpers.js';
import { describePostgres } from '../testDatabase.js';
import { type Creds, type Fleet, form, startFleet, waitFor } from './fleet.js';

const login = async (url: string, client: Creds, username = 'alice') => {
  const res = await form(url, '/token', client, { grant_type: 'password', username, password: PASSWORD });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
};
const refresh = (url: string, client: Creds, token: string) => form(url, '/token', client, { grant_type: 'refresh_token', refresh_token: token });
const introspect = async (url: string, client: Creds, token: string) => (await (await form(url, '/introspect', client, { token })).json()) as { active: boolean };

describePostgres('two instances on one PostgreSQL database', () => {
  let fleet: Fleet;
  afterEach(() => fleet?.close());

  describe('refresh races', () => {
    it('lets exactly one of 20 parallel refreshes of one token win when they are split across both instances (compare-and-set under READ COMMITTED)', async () => {
      fleet = await startFleet(2);
      const [a] = fleet.apps;
      await a!.addUser('alice');
      const web = await a!.addClient('web', { grants: ['password', 'refresh_token'], refreshGraceSeconds: 0 });
      for (let round = 0; round < 5; round++) {
        const { refresh_token } = await login(fleet.urls[round % 2]!, web);
        const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(fleet.urls[i % 2]!, web, refresh_token)));
        const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ error?: string; refresh_token?: string }>;
        const winners = responses.flatMap((r, i) => (r.status === 200 ? [i] : []));
        expect(winners, `round ${round}`).toHaveLength(1);
        for (const [i, r] of responses.entries()) if (i !== winners[0]) expect([r.status, bodies[i]?.error]).toEqual([400, 'invalid_grant']);
        // losing a race is not a replay: the family lives on, and the winner's successor works on the other instance
        const successor = bodies[winners[0]!]!.refresh_token!;
        expect((await refresh(fleet.urls[(winners[0]! + 1) % 2]!, web, successor)).status).toBe(200);
      }
      expect(await new AuditRepository(a!.store.db).query({ type: 'refresh.reuse_detected' })).toEqual([]);
    });

    it('mints one successor only when the retry grace lets the losers of the race retry', async () => {
      fleet = await startFleet(2);
      const [a] = fleet.apps;
      await a!.addUser('alice');
      const web = await a!.addClient('web', { grants: ['password', 'refresh_token'], refreshGraceSeconds: 30 });
      const { refresh_token } = await login(fleet.urls[0]!, web);
      const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(fleet.urls[i % 2]!, web, refresh_token)));
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ refresh_token?: string; error?: string }>;
      const successors = new Set(bodies.flatMap((b) => (b.refresh_token ? [b.refresh_token] : [])));
      expect(successors.size).toBe(1);
      for (const [i, r] of responses.entries()) if (r.status !== 200) expect([r.status, bodies[i]?.error]).toEqual([400, 'invalid_grant']);
    });
  });

  it('revokes the family when a spent refresh token is replayed, whichever instance sees the replay (RFC 9700 §4.14.2)', async () => {
    const clock = new FakeClock();
    fleet = await startFleet(2, { clock });
    const [a] = fleet.apps;
    await a!.addUser('alice');
    const web = await a!.addClient('web', { grants: ['password', 'refresh_token'] });
    const api = await a!.addClient('api', { grants: ['client_credentials'] });
    for (const [rotateOn, replayOn] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const first = await login(fleet.urls[rotateOn]!, web);
      const rotated = await refresh(fleet.urls[rotateOn]!, web, first.refresh_token);
      expect(rotated.status).toBe(200);
      const { access_token, refresh_token: successor } = (await rotated.json()) as { access_token: string; refresh_token: string };
      // later, the old token comes back: a replay, not a request that raced the rotation
      clock.advance(60);
      const replay = await refresh(fleet.urls[replayOn]!, web, first.refresh_token);
      expect(replay.status).toBe(400);
      expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
      // the whole family is dead on both instances: the successor, and its access token once the sid entry arrives
      for (const url of fleet.urls) expect((await refresh(url, web, successor)).status).toBe(400);
      for (const url of fleet.urls) await waitFor(`the sid entry on ${url}`, 2000, async () => !(await introspect(url, api, access_token)).active);
      const sid = decodeJwt(access_token).payload.sid as string;
      expect((await new DenyListRepository(a!.store.db).allAfter(0, 100)).filter((r) => r.type === 'sid' && r.value === sid)).toHaveLength(1);
    }
    expect(await new AuditRepository(a!.store.db).query({ type: 'refresh.reuse_detected' })).toHaveLength(2);
  });

  it('rotates the signing key once when both instances run the rotation schedule at the same moment', async () => {
    const clock = new FakeClock();
    fleet = await startFleet(2, { clock, config: { keys: { rotateEvery: '1d', jwksMaxAgeSeconds: 300 } } });
    const [a, b] = fleet.apps;
    const before = await a!.app.services.keys.repo.all();
    expect(before.map((k) => k.state).sort()).toEqual(['active', 'next']);
    clock.advance(2 * 86_400);
    for (let i = 0; i < 3; i++) await Promise.all([a!.app.tick(), b!.app.tick(), a!.app.tick(), b!.app.tick()]);
    const after = await a!.app.services.keys.repo.all();
    const byState = (state: string) => after.filter((k) => k.state === state).map((k) => k.kid);
    expect(byState('active')).toEqual([before.find((k) => k.state === 'next')!.kid]);
    expect(byState('retired')).toEqual([before.find((k) => k.state === 'active')!.kid]);
    expect(byState('next')).toHaveLength(1);
    expect(await new AuditRepository(a!.store.db).query({ type: 'key.rotated' })).toHaveLength(1);
    // both sign with the new key
    const api = await a!.addClient('api', { grants: ['client_credentials'] });
    for (const url of fleet.urls) {
      const res = await form(url, '/token', api, { grant_type: 'client_credentials' });
      expect(decodeJwt(((await res.json()) as { access_token: string }).access_token).header.kid).toBe(byState('active')[0]);
    }
    expect(b!.app.services.keyring.jwks().etag).toBe(a!.app.services.keyring.jwks().etag);
  });

  it('applies a CLI-style change made through one instance on the other within a few seconds (users, clients, keys)', async () => {
    // the background jobs on, as in production: key reload, deny-list sync (and LISTEN)
    fleet = await startFleet(2, { jobs: true });
    const [a, b] = fleet.apps;
    const [urlA] = fleet.urls;
    await a!.addUser('alice');
    await a!.addUser('bob');
    const web = await a!.addClient('web', { grants: ['password', 'refresh_token'] });
    const api = await a!.addClient('api', { grants: ['client_credentials'] });
    const alice = await login(urlA!, web);
    const bob = await login(urlA!, web, 'bob');

    await b!.app.services.users.setEnabled('alice', false);
    expect((await form(urlA!, '/token', web, { grant_type: 'password', username: 'alice', password: PASSWORD })).status).toBe(400);
    expect((await refresh(urlA!, web, alice.refresh_token)).status).toBe(400);
    await waitFor('alice denied on A', 3000, async () => !(await introspect(urlA!, api, alice.access_token)).active);
    expect((await introspect(urlA!, api, bob.access_token)).active).toBe(true);

    const rotated = await b!.app.services.keys.rotate('ES256');
    const kid = await waitFor('A signing with the rotated key', 3000, async () => {
      const res = await form(urlA!, '/token', api, { grant_type: 'client_credentials' });
      const k = decodeJwt(((await res.json()) as { access_token: string }).access_token).header.kid;
      return k === rotated?.activated ? k : undefined;
    });
    expect(kid).toBe(rotated?.activated);
    const jwks = (await (await fetch(`${urlA}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toContain(rotated?.next);

    await b!.app.services.clients.remove('web');
    // instances may cache a client row briefly (at most the promised couple of seconds)
    await waitFor('A to refuse the removed client', 3000, async () => (await form(urlA!, '/revoke', web, { token: 'anything' })).status === 401);
    const gone = await refresh(urlA!, web, bob.refresh_token);
    expect(gone.status).toBe(401);
    expect(((await gone.json()) as { error: string }).error).toBe('invalid_client');
  });
});
