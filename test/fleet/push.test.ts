// Cross-instance revocation push on PostgreSQL: deny-list writes NOTIFY on commit and every
// instance LISTENs, so an SSE subscriber on one instance hears a revocation made on another at
// once; and the feed's cursor is monotonic and gap-free across instances, so a subscriber that
// resumes on another instance with Last-Event-ID misses nothing.
// The apps run without background jobs: the periodic sync (the fallback) cannot be what delivers.
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { DenyListRepository } from '../../src/store/denyList.js';
import { PASSWORD } from '../helpers.js';
import { describePostgres } from '../testDatabase.js';
import { type Creds, type Fleet, form, startFleet, subscribe, waitFor } from './fleet.js';

const login = async (url: string, client: Creds, username: string) => {
  const res = await form(url, '/token', client, { grant_type: 'password', username, password: PASSWORD });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
};
const revoke = async (url: string, client: Creds, token: string) => expect((await form(url, '/revoke', client, { token })).status).toBe(200);

describePostgres('deny-list push across instances (PostgreSQL LISTEN/NOTIFY)', () => {
  let fleet: Fleet;
  let subscriptions: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const s of subscriptions) await s.close();
    subscriptions = [];
    await fleet?.close();
  });

  const setup = async () => {
    fleet = await startFleet(2, { jobs: false });
    const [a] = fleet.apps;
    for (const name of ['alice', 'bob', 'carol', 'dave']) await a!.addUser(name);
    const web = await a!.addClient('web', { grants: ['password', 'refresh_token'] });
    const feed = await a!.addClient('todo-api', { grants: ['client_credentials'] });
    return { web, feed };
  };
  const sub = async (url: string, client: Creds, lastEventId?: string) => {
    const s = await subscribe(url, client, lastEventId);
    subscriptions.push(s);
    return s;
  };

  it('delivers a revocation made on instance A to an SSE subscriber on instance B within 1 s', async () => {
    const { web, feed } = await setup();
    const [urlA, urlB] = fleet.urls as [string, string];
    const onB = await sub(urlB, feed);
    const { access_token, refresh_token } = await login(urlA, web, 'alice');
    await revoke(urlA, web, access_token);
    const jti = await waitFor('the jti entry on B', 1000, () => onB.deny().find((e) => e.entry.type === 'jti')?.entry.value);
    expect(jti).toBeTruthy();
    await revoke(urlA, web, refresh_token);
    await waitFor('the sid entry on B', 1000, () => onB.deny().some((e) => e.entry.type === 'sid'));
    // and the other way round, from a change made through B's services (as the CLI would)
    const onA = await sub(urlA, feed);
    await fleet.apps[1]!.app.services.users.logout('bob');
    await waitFor('the sub entry on A', 1000, () => onA.deny().some((e) => e.entry.type === 'sub'));
  });

  it('lets a subscriber resume on the other instance with Last-Event-ID and miss nothing, while both instances write', async () => {
    const { web, feed } = await setup();
    const [urlA, urlB] = fleet.urls as [string, string];
    const sessions = await Promise.all(Array.from({ length: 16 }, (_, i) => login(fleet.urls[i % 2]!, web, ['alice', 'bob', 'carol', 'dave'][i % 4]!)));
    const first = await sub(urlA, feed);
    // revocations on both instances at once: ids are drawn concurrently on two connections
    await Promise.all(sessions.slice(0, 8).map((s, i) => revoke(fleet.urls[i % 2]!, web, s.access_token)));
    await waitFor('the first 8 entries on A', 2000, () => first.deny().length >= 8);
    const seen = first.deny();
    await first.close();
    const resumeFrom = seen[seen.length - 1]!.id;
    // more while nobody listens, then more while the resumed subscriber catches up
    await Promise.all(sessions.slice(8, 12).map((s, i) => revoke(fleet.urls[i % 2]!, web, s.access_token)));
    const resumed = await sub(urlB, feed, resumeFrom);
    await Promise.all(sessions.slice(12).map((s, i) => revoke(fleet.urls[i % 2]!, web, s.access_token)));
    await waitFor('the other 8 entries on B', 2000, () => resumed.deny().length >= 8);

    const all = [...seen, ...resumed.deny()];
    const ids = all.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    const table = await new DenyListRepository(fleet.apps[0]!.store.db).allAfter(0, 100);
    expect(all.map((e) => e.entry.value).sort()).toEqual(table.map((r) => r.value).sort());
    expect(table).toHaveLength(16);
  });

  it('makes deny-list ids visible in commit order: a second writer waits for the first to commit', async () => {
    await setup();
    const [a, b] = fleet.apps;
    let commitFirst!: () => void;
    const held = new Promise<void>((resolve) => (commitFirst = resolve));
    let firstInserted!: () => void;
    const inserted = new Promise<void>((resolve) => (firstInserted = resolve));
    const first = a!.store.db.transaction().execute(async (trx) => {
      await new DenyListRepository(trx).insert([{ type: 'jti', value: 'first', expires_at: 2_000_000_000 }], 1);
      firstInserted();
      await held;
    });
    await inserted;
    let secondDone = false;
    const second = new DenyListRepository(b!.store.db).insert([{ type: 'jti', value: 'second', expires_at: 2_000_000_000 }], 2).then(() => (secondDone = true));
    // the second writer is parked on the deny-list lock, not racing ahead with a later id
    const admin = new pg.Client({ connectionString: fleet.database.url });
    await admin.connect();
    try {
      await waitFor('the second writer to wait on the advisory lock', 5000, async () => {
        const r = await admin.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'");
        return r.rows[0].n === 1;
      });
    } finally {
      await admin.end();
    }
    expect(secondDone).toBe(false);
    expect(await new DenyListRepository(b!.store.db).allAfter(0, 10)).toEqual([]);
    commitFirst();
    await first;
    await second;
    const rows = await new DenyListRepository(b!.store.db).allAfter(0, 10);
    expect(rows.map((r) => r.value)).toEqual(['first', 'second']);
    expect(rows[0]!.id).toBeLessThan(rows[1]!.id);
  });

  it('reconnects the LISTEN connection when it drops, and catches up on what it missed', async () => {
    const { web, feed } = await setup();
    const [urlA, urlB] = fleet.urls as [string, string];
    const onB = await sub(urlB, feed);
    const admin = new pg.Client({ connectionString: fleet.database.url });
    await admin.connect();
    try {
      const kill = () => admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'tollgate-listen'");
      const listeners = async () => (await admin.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'tollgate-listen'")).rows[0].n as number;
      expect(await listeners()).toBe(2);
      await kill();
      // a revocation while both instances are deaf: B learns of it when its listener is back
      const { access_token } = await login(urlA, web, 'alice');
      await revoke(urlA, web, access_token);
      await waitFor('the entry on B after the reconnect', 5000, () => onB.deny().length === 1);
      await waitFor('both listeners back', 5000, async () => (await listeners()) === 2);
      const carol = await login(urlA, web, 'carol');
      await revoke(urlA, web, carol.access_token);
      await waitFor('the next entry on B within 1 s', 1000, () => onB.deny().length === 2);
    } finally {
      await admin.end();
    }
  });
});
