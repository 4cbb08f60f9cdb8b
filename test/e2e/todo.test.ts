// The to-do API from examples/todo-api, end to end: Tollgate in this process on a random port, the
// to-do API as the child process `npm run example:todo` starts (built code, env configuration).
// A user signs in, uses the API, refreshes, revokes, and the API refuses the revoked family's
// access token within a second, pushed over the deny-list stream.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, basic } from '../helpers.js';
import { type Tollgate, startTollgate } from '../verifier/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(root, 'dist', 'examples', 'todo-api', 'main.js');

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts the built to-do API; resolves with its URL once it says it listens, or rejects with its exit. */
function startTodoApi(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [main], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, output: () => out });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(Object.assign(new Error(`to-do API exited ${code}: ${out}`), { exitCode: code, output: out })));
  });
}

function stop(running: Running | undefined): Promise<void> {
  if (!running || running.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    running.child.once('exit', () => resolve());
    running.child.kill('SIGTERM');
  });
}

async function form(url: string, auth: string, body: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, string> };
}

describe('the to-do API (examples/todo-api) with Tollgate', () => {
  let tg: Tollgate;
  let api: Running | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-todo-'));
    tg = await startTollgate();
    await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS', 'TODO_WRITER']);
    await tg.t.addUser('bob', PASSWORD, ['RETRIEVE_TODOS']);
    api = await startTodoApi({
      TODO_API_PORT: '0',
      TODO_API_HOST: '127.0.0.1',
      TODO_API_DATABASE: path.join(dir, 'todos.db'),
      TOLLGATE_ISSUER: tg.url,
      TODO_API_AUDIENCE: 'todo-api',
      TODO_API_CLIENT_ID: tg.feed.client_id,
      TODO_API_CLIENT_SECRET: tg.feed.client_secret,
    });
  });

  afterAll(async () => {
    await stop(api);
    await tg?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const signIn = (username: string) => form(`${tg.url}/token`, basic(tg.web), { grant_type: 'password', username, password: PASSWORD });
  const todos = (token: string) => fetch(`${api!.url}/todos`, { headers: { authorization: `Bearer ${token}` } });
  const addTodo = (token: string, text: string) =>
    fetch(`${api!.url}/todos`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text }) });

  it('signs in, uses the API, refreshes, revokes, and the API refuses the revoked token within one second', async () => {
    const login = await signIn('alice');
    expect(login.status).toBe(200);

    const created = await addTodo(login.body.access_token!, 'buy milk');
    expect(created.status).toBe(201);
    const todo = (await created.json()) as { id: string; text: string; status: string };
    expect(todo).toMatchObject({ text: 'buy milk', status: 'open' });
    expect(typeof todo.id).toBe('string');

    const list = await todos(login.body.access_token!);
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ todos: [{ id: todo.id, text: 'buy milk', status: 'open' }] });

    const refreshed = await form(`${tg.url}/token`, basic(tg.web), { grant_type: 'refresh_token', refresh_token: login.body.refresh_token! });
    expect(refreshed.status).toBe(200);
    expect((await todos(refreshed.body.access_token!)).status).toBe(200);

    const revoked = await fetch(`${tg.url}/revoke`, { method: 'POST', headers: { authorization: basic(tg.web), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: refreshed.body.refresh_token! }) });
    expect(revoked.status).toBe(200);

    // poll for up to one second, then assert: the family's access token is refused
    const deadline = Date.now() + 1000;
    let res = await todos(refreshed.body.access_token!);
    while (res.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      res = await todos(refreshed.body.access_token!);
    }
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="todo-api", error="invalid_token"/);
    // the access token from before the refresh belongs to the same family
    expect((await todos(login.body.access_token!)).status).toBe(401);

    // a new sign-in is a new family: it works
    const again = await signIn('alice');
    expect((await todos(again.body.access_token!)).status).toBe(200);
  });

  it("shows each user only their own to-dos and needs TODO_WRITER to add one", async () => {
    const bob = await signIn('bob');
    const list = await todos(bob.body.access_token!);
    expect(await list.json()).toEqual({ todos: [] });
    const res = await addTodo(bob.body.access_token!, 'sneaky');
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
  });

  it('answers 401 with a bare Bearer challenge without a token, and refuses a token in the query string', async () => {
    const none = await fetch(`${api!.url}/todos`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="todo-api"');
    expect(await none.text()).not.toMatch(/error/); // RFC 6750 §3.1: no error information at all
    const { body } = await signIn('alice');
    const inQuery = await fetch(`${api!.url}/todos?access_token=${body.access_token}`);
    expect(inQuery.status).toBe(400);
  });

  it('exits 2 naming the variable when TODO_API_CLIENT_SECRET or TODO_API_PORT is wrong', async () => {
    const base = { TOLLGATE_ISSUER: tg.url, TODO_API_DATABASE: path.join(dir, 'x.db'), TODO_API_PORT: '0' };
    const noSecret = await startTodoApi(base).catch((e: { exitCode: number; output: string }) => e);
    expect(noSecret).toMatchObject({ exitCode: 2 });
    expect((noSecret as { output: string }).output).toContain('TODO_API_CLIENT_SECRET');
    const badPort = await startTodoApi({ ...base, TODO_API_CLIENT_SECRET: 'x', TODO_API_PORT: 'eighty' }).catch((e: { exitCode: number; output: string }) => e);
    expect(badPort).toMatchObject({ exitCode: 2 });
    expect((badPort as { output: string }).output).toContain('TODO_API_PORT');
  });

  it('exits 1 when Tollgate refuses its client (it will not run without the deny list)', async () => {
    const failed = await startTodoApi({ TOLLGATE_ISSUER: tg.url, TODO_API_DATABASE: path.join(dir, 'y.db'), TODO_API_PORT: '0', TODO_API_CLIENT_ID: tg.feed.client_id, TODO_API_CLIENT_SECRET: 'tgs_wrong' }).catch((e: { exitCode: number; output: string }) => e);
    expect(failed).toMatchObject({ exitCode: 1 });
    expect((failed as { output: string }).output).toMatch(/cannot reach Tollgate/);
  });
});
