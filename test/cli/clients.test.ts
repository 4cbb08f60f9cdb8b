// `tollgate clients …` run as a child process against a temp database (INTERFACE.md, Admin CLI).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic } from '../helpers.js';
import { type CliSandbox, cliSandbox, failureLine } from './run.js';

interface ClientJson {
  client_id: string;
  public: boolean;
  grants: string[];
  scope: string;
  audience: string;
  refresh_grace_seconds: number | null;
}

const SHOW_KEYS = ['audience', 'client_id', 'grants', 'public', 'refresh_grace_seconds', 'scope'];

describe('tollgate clients', () => {
  let cli: CliSandbox;
  let web: { client_id: string; client_secret: string };

  beforeAll(async () => {
    cli = cliSandbox();
    web = await cli.json(['clients', 'add', 'web', '--grant', 'password', '--grant', 'refresh_token', '--scope', 'todos:read todos:write', '--audience', 'todo-api', '--refresh-grace', '10']);
  });
  afterAll(() => cli.cleanup());

  /** Does the server sharing the store accept these client credentials? */
  async function authenticates(clientId: string, secret: string | undefined): Promise<boolean> {
    const t = await cli.app();
    try {
      return (await t.app.services.clientAuth.authenticate(clientId, secret)) !== undefined;
    } finally {
      await t.close();
    }
  }

  describe('add', () => {
    it('prints {"client_id", "client_secret"} once for a confidential client', async () => {
      expect(Object.keys(web).sort()).toEqual(['client_id', 'client_secret']);
      expect(web.client_id).toBe('web');
      expect(web.client_secret).toMatch(/^tgs_[A-Za-z0-9_-]{49}$/);
      expect(await authenticates('web', web.client_secret)).toBe(true);
    });

    it('prints only {"client_id"} for a public client', async () => {
      const spa = await cli.json<Record<string, unknown>>(['clients', 'add', 'spa', '--public', '--grant', 'password', '--grant', 'refresh_token']);
      expect(spa).toEqual({ client_id: 'spa' });
      expect(await authenticates('spa', undefined)).toBe(true);
    });

    it('prints the secret with a warning without --json', async () => {
      const r = await cli.run(['clients', 'add', 'human', '--grant', 'client_credentials']);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      const secret = /tgs_[A-Za-z0-9_-]{49}/.exec(r.stdout)?.[0];
      expect(secret).toBeDefined();
      expect(await authenticates('human', secret)).toBe(true);
    });

    it('issues tokens with the configured grants, scope and audience', async () => {
      await cli.json(['users', 'add', 'alice', '--password-stdin'], { stdin: 'a long enough password' });
      const t = await cli.app();
      try {
        const res = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'password', username: 'alice', password: 'a long enough password' });
        expect(res.status).toBe(200);
        expect(res.body.scope).toBe('todos:read todos:write');
        const payload = JSON.parse(Buffer.from(String(res.body.access_token).split('.')[1] ?? '', 'base64url').toString());
        expect(payload).toMatchObject({ aud: 'todo-api', client_id: 'web' });
        const cc = await t.request.post('/token').set('Authorization', basic(web)).type('form').send({ grant_type: 'client_credentials' });
        expect(cc.body.error).toBe('unauthorized_client');
      } finally {
        await t.close();
      }
    });

    it('refuses a duplicate client_id', async () => {
      expect(failureLine(await cli.run(['clients', 'add', 'web']))).toMatch(/web already exists/);
    });

    it.each([
      ['a non-number --refresh-grace', ['clients', 'add', 'x1', '--refresh-grace', 'abc'], /--refresh-grace/],
      ['a negative --refresh-grace', ['clients', 'add', 'x2', '--refresh-grace', '-1'], /refresh-grace/],
      ['a --refresh-grace over 60', ['clients', 'add', 'x3', '--refresh-grace', '61'], /refresh-grace/],
      ['an unknown grant', ['clients', 'add', 'x4', '--grant', 'authorization_code'], /unknown grant/],
      ['client_credentials for a public client', ['clients', 'add', 'x5', '--public', '--grant', 'client_credentials'], /public/],
      ['a client_id outside VSCHAR', ['clients', 'add', 'café'], /client_id/],
      ['a client_id over 128 characters', ['clients', 'add', 'x'.repeat(129)], /client_id/],
      ['a client_id in UUID form (the form of a user sub)', ['clients', 'add', '3F2504E0-4F89-41D3-9A0C-0305E82C3301', '--grant', 'client_credentials'], /UUID/],
      ['an invalid scope', ['clients', 'add', 'x6', '--scope', 'a "b"'], /scope/],
    ])('refuses %s with one line and exit 1', async (_what, args, message) => {
      const r = await cli.run(args);
      expect(failureLine(r)).toMatch(message);
      expect(r.code).toBe(1);
    });

    it('added none of the refused clients', async () => {
      const ids = (await cli.json<ClientJson[]>(['clients', 'list'])).map((c) => c.client_id);
      for (const id of ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'café', '3F2504E0-4F89-41D3-9A0C-0305E82C3301']) expect(ids).not.toContain(id);
    });

    it("refuses a client_id equal to a user's id: its client_credentials tokens would carry that user's sub", async () => {
      await cli.json(['users', 'add', 'carol', '--password-stdin'], { stdin: 'a long enough password' });
      const { id } = await cli.json<{ id: string }>(['users', 'show', 'carol']);
      const r = await cli.run(['clients', 'add', id, '--grant', 'client_credentials']);
      expect(failureLine(r)).toMatch(/UUID|user/);
      expect(r.code).toBe(1);
    });

    it('adds any RFC 6749 VSCHAR client_id, such as urn:example:svc+1, and prints it unchanged', async () => {
      const svc = await cli.json<{ client_id: string; client_secret: string }>(['clients', 'add', 'urn:example:svc+1', '--grant', 'client_credentials']);
      expect(svc.client_id).toBe('urn:example:svc+1');
      expect(await cli.json<ClientJson>(['clients', 'show', 'urn:example:svc+1'])).toMatchObject({ client_id: 'urn:example:svc+1', audience: 'urn:example:svc+1' });
      expect(await authenticates('urn:example:svc+1', svc.client_secret)).toBe(true);
      const spaced = await cli.run(['clients', 'add', 'my service', '--grant', 'client_credentials', '--audience', 'todo-api']);
      expect(spaced.code).toBe(0);
      expect((await cli.run(['clients', 'list'])).stdout).toContain('my service');
    });

    it('asks for --audience when the client_id has a space (an audience is visible characters only)', async () => {
      expect(failureLine(await cli.run(['clients', 'add', 'no audience', '--grant', 'client_credentials']))).toMatch(/--audience/);
    });
  });

  describe('list and show', () => {
    it('show --json prints {"client_id", "public", "grants", "scope", "audience", "refresh_grace_seconds"}', async () => {
      const shown = await cli.json<ClientJson>(['clients', 'show', 'web']);
      expect(Object.keys(shown)).toEqual(expect.arrayContaining(SHOW_KEYS));
      expect(shown).toMatchObject({ client_id: 'web', public: false, grants: ['password', 'refresh_token'], scope: 'todos:read todos:write', audience: 'todo-api', refresh_grace_seconds: 10 });
      expect(JSON.stringify(shown)).not.toContain('tgs_');
    });

    it('defaults: grants password and refresh_token, audience the client_id, no grace', async () => {
      await cli.json(['clients', 'add', 'plain']);
      expect(await cli.json<ClientJson>(['clients', 'show', 'plain'])).toMatchObject({ grants: ['password', 'refresh_token'], scope: '', audience: 'plain', refresh_grace_seconds: null, public: false });
    });

    it('list --json prints an array of the same objects, without secrets', async () => {
      const list = await cli.json<ClientJson[]>(['clients', 'list']);
      expect(list.find((c) => c.client_id === 'web')).toEqual(await cli.json(['clients', 'show', 'web']));
      for (const c of list) expect(Object.keys(c)).toEqual(expect.arrayContaining(SHOW_KEYS));
      expect(JSON.stringify(list)).not.toContain('tgs_');
    });

    it('list prints a table without --json', async () => {
      const r = await cli.run(['clients', 'list']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/CLIENT_ID/);
      expect(r.stdout).toContain('web');
    });
  });

  describe('update', () => {
    it('changes grants, scope, audience and grace', async () => {
      await cli.json(['clients', 'add', 'changing']);
      const updated = await cli.json<ClientJson>(['clients', 'update', 'changing', '--grant', 'client_credentials', '--scope', 'a b', '--audience', 'api', '--refresh-grace', '5']);
      expect(updated).toMatchObject({ client_id: 'changing', grants: ['client_credentials'], scope: 'a b', audience: 'api', refresh_grace_seconds: 5 });
      expect(await cli.json<ClientJson>(['clients', 'show', 'changing'])).toMatchObject(updated);
    });

    it('refuses a bad --refresh-grace', async () => {
      failureLine(await cli.run(['clients', 'update', 'web', '--refresh-grace', 'soon']));
      expect((await cli.json<ClientJson>(['clients', 'show', 'web'])).refresh_grace_seconds).toBe(10);
    });
  });

  describe('rotate-secret', () => {
    it('prints a new secret; the old one stops working at once', async () => {
      const added = await cli.json<{ client_secret: string }>(['clients', 'add', 'rotating', '--grant', 'client_credentials']);
      const rotated = await cli.json<{ client_id: string; client_secret: string }>(['clients', 'rotate-secret', 'rotating']);
      expect(rotated.client_id).toBe('rotating');
      expect(rotated.client_secret).toMatch(/^tgs_/);
      expect(rotated.client_secret).not.toBe(added.client_secret);
      expect(await authenticates('rotating', added.client_secret)).toBe(false);
      expect(await authenticates('rotating', rotated.client_secret)).toBe(true);
    });

    it('refuses a public client, which has no secret', async () => {
      await cli.json(['clients', 'add', 'pub', '--public']);
      expect(failureLine(await cli.run(['clients', 'rotate-secret', 'pub']))).toMatch(/public/);
    });
  });

  describe('remove', () => {
    it('removes the client: it no longer authenticates', async () => {
      const gone = await cli.json<{ client_secret: string }>(['clients', 'add', 'gone']);
      expect(await cli.json(['clients', 'remove', 'gone'])).toMatchObject({ client_id: 'gone' });
      expect(await authenticates('gone', gone.client_secret)).toBe(false);
      expect((await cli.run(['clients', 'show', 'gone'])).code).toBe(1);
    });
  });

  describe('errors', () => {
    it.each([
      ['show', ['clients', 'show', 'nobody']],
      ['remove', ['clients', 'remove', 'nobody']],
      ['rotate-secret', ['clients', 'rotate-secret', 'nobody']],
      ['update', ['clients', 'update', 'nobody', '--scope', 'a']],
    ])('%s of an unknown client: one line, exit 1', async (_cmd, args) => {
      const r = await cli.run(args);
      expect(failureLine(r)).toBe('tollgate: error: no client nobody');
      expect(r.code).toBe(1);
    });

    it('stops with exit 2 and one line naming the key on an invalid configuration', async () => {
      const r = await cli.run(['clients', 'list'], { env: { TOLLGATE_ISSUER: 'http://auth.example.com' } });
      expect(r.code).toBe(2);
      expect(failureLine(r)).toMatch(/issuer.*TOLLGATE_ISSUER/);
    });

    it('stops with exit 2 on a malformed TOLLGATE_KEY_ENCRYPTION_KEY, without echoing it', async () => {
      const r = await cli.run(['clients', 'list'], { env: { TOLLGATE_KEY_ENCRYPTION_KEY: 'definitely-not-base64url-32-bytes' } });
      expect(r.code).toBe(2);
      const line = failureLine(r);
      expect(line).toContain('TOLLGATE_KEY_ENCRYPTION_KEY');
      expect(line).not.toContain('definitely-not');
    });
  });
});
