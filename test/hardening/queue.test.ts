// Resource exhaustion (issue 5 §2): argon2 runs behind a bounded number of concurrent hashes and a
// bounded queue. Past the queue, password grants get 503 + Retry-After at once, and a flood of them
// cannot starve refresh and introspection, which never touch the hasher.
import argon2 from 'argon2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type TestApp, basic, createTestApp, listen } from '../helpers.js';

type Client = { client_id: string; client_secret?: string };
type Answer = { status: number; headers: Headers; body: Record<string, unknown> };

async function post(url: string, path: string, client: Client, form: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Lets the event loop run until `done()` holds (the server works in the same process). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((r) => setImmediate(r));
  expect(done()).toBe(true);
}

function expectOverloaded(res: Answer) {
  expect(res.status).toBe(503);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(res.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
  expect(res.headers.get('cache-control')).toContain('no-store');
}

describe('password-hashing queue', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of cleanup.splice(0)) await close();
  });

  async function setup(passwords: Record<string, number>) {
    const t: TestApp = await createTestApp({ config: { passwords: { maxConcurrentHashes: 1, maxQueuedHashes: 1, ...passwords } } });
    cleanup.push(() => t.close());
    await t.addUser('alice');
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const rs = await t.addClient('rs', { grants: ['client_credentials'] });
    const server = await listen(t.app);
    cleanup.unshift(() => server.close());
    const signIn = () => post(server.url, '/token', web, { grant_type: 'password', username: 'alice', password: 'correct horse battery staple' });
    return { t, web, rs, url: server.url, signIn };
  }

  it('answers 503 with Retry-After at once when the queue is full, while refresh and introspection still succeed', async () => {
    const { t, web, rs, url, signIn } = await setup({});
    const session = await signIn();
    expect(session.status).toBe(200);

    // every argon2 verification now waits for the test: the hasher is busy for as long as we say
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const realVerify = argon2.verify.bind(argon2);
    const verify = vi.spyOn(argon2, 'verify').mockImplementation(async (...args: Parameters<typeof argon2.verify>) => {
      await gate;
      return realVerify(...args);
    });
    const hasher = t.app.services.hasher;

    const running = signIn();
    await until(() => hasher.active === 1);
    const queued = signIn();
    await until(() => hasher.queueDepth === 1);

    // the flood is answered while no hash has finished: nobody waited for argon2
    const flood = await Promise.all(Array.from({ length: 6 }, () => signIn()));
    for (const res of flood) expectOverloaded(res);

    const refreshed = await post(url, '/token', web, { grant_type: 'refresh_token', refresh_token: String(session.body.refresh_token) });
    expect(refreshed.status).toBe(200);
    const introspected = await post(url, '/introspect', rs, { token: String(refreshed.body.access_token) });
    expect(introspected.status).toBe(200);
    expect(introspected.body.active).toBe(true);
    expect(hasher.active).toBe(1);
    expect(hasher.queueDepth).toBe(1);

    release();
    expect((await running).status).toBe(200);
    expect((await queued).status).toBe(200);
    expect(verify).toHaveBeenCalledTimes(2);
    // an overloaded server is not evidence of guessing: the 503s did not count as failures
    const failures = await t.store.db.selectFrom('login_failures').selectAll().execute();
    expect(failures).toEqual([]);
  });

  it('sheds a real flood of password grants with 503s, and refresh and introspection succeed during it', async () => {
    // hashes heavy enough that the flood arrives while the first one is still running
    const { web, rs, url, signIn } = await setup({ memoryCostKiB: 32768, timeCost: 3 });
    const session = await signIn();
    expect(session.status).toBe(200);

    const flood = Array.from({ length: 10 }, () => signIn());
    const refreshed = await post(url, '/token', web, { grant_type: 'refresh_token', refresh_token: String(session.body.refresh_token) });
    const introspected = await post(url, '/introspect', rs, { token: String(refreshed.body.access_token) });
    const answers = await Promise.all(flood);

    expect(refreshed.status).toBe(200);
    expect(introspected.body.active).toBe(true);
    const overloaded = answers.filter((r) => r.status === 503);
    expect(overloaded.length).toBeGreaterThan(0);
    for (const res of overloaded) expectOverloaded(res);
    for (const res of answers) expect([200, 503]).toContain(res.status);
    expect(answers.some((r) => r.status === 200)).toBe(true);
  });

  it('queues up to maxQueuedHashes and serves them all when the flood fits', async () => {
    const { signIn } = await setup({ maxConcurrentHashes: 2, maxQueuedHashes: 8 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => signIn()));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
  });
});
