// Secrets (issue 5 §4): refresh tokens (tgr_) and client secrets (tgs_) carry a prefix secret
// scanners can find and a checksum, so a mistyped or forged one is refused before any database
// lookup; the store holds only their SHA-256 hashes.
import { type Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ClientRepository } from '../../src/store/clients.js';
import { RefreshTokenRepository } from '../../src/store/refreshTokens.js';
import type { Database } from '../../src/store/schema.js';
import { CLIENT_SECRET_PREFIX, REFRESH_TOKEN_PREFIX, isWellFormedSecret, mintSecret, sha256Hex } from '../../src/tokens/secrets.js';
import { PASSWORD, type TestApp, basic, createTestApp, passwordGrant, refreshGrant } from '../helpers.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SHAPE = (prefix: string) => new RegExp(`^${prefix}[A-Za-z0-9_-]{49}$`);

/** Every value of every row of every table, as text. */
async function dumpStore(db: Kysely<Database>, dialect: string): Promise<string> {
  const tables =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(db);
  const out: string[] = [];
  for (const { name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
    out.push(JSON.stringify(rows.rows));
  }
  return out.join('\n');
}

/** The same string with the character at `i` replaced by a different base64url character. */
function mutate(value: string, i: number): string {
  const c = value[i] as string;
  const other = BASE64URL[(BASE64URL.indexOf(c) + 1) % BASE64URL.length] as string;
  return value.slice(0, i) + other + value.slice(i + 1);
}

describe('prefixed, checksummed secrets', () => {
  let t: TestApp;
  let web: { client_id: string; client_secret?: string };
  let rs: { client_id: string; client_secret?: string };

  beforeEach(async () => {
    t = await createTestApp();
    await t.addUser('alice');
    web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    rs = await t.addClient('rs', { grants: ['client_credentials'] });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await t.close();
  });

  describe('shape', () => {
    it('gives refresh tokens the tgr_ prefix and a valid checksum, on issue and on every rotation', async () => {
      const first = (await passwordGrant(t, web, 'alice')).body.refresh_token as string;
      const second = (await refreshGrant(t, web, first)).body.refresh_token as string;
      for (const token of [first, second]) {
        expect(token).toMatch(SHAPE(REFRESH_TOKEN_PREFIX));
        expect(isWellFormedSecret(REFRESH_TOKEN_PREFIX, token)).toBe(true);
        expect(isWellFormedSecret(CLIENT_SECRET_PREFIX, token)).toBe(false);
      }
    });

    it('gives client secrets the tgs_ prefix and a valid checksum, on creation and on rotation', async () => {
      const rotated = await t.app.services.clients.rotateSecret('web');
      for (const secret of [web.client_secret as string, rotated]) {
        expect(secret).toMatch(SHAPE(CLIENT_SECRET_PREFIX));
        expect(isWellFormedSecret(CLIENT_SECRET_PREFIX, secret)).toBe(true);
        expect(isWellFormedSecret(REFRESH_TOKEN_PREFIX, secret)).toBe(false);
      }
    });

    it('catches every single-character change with the checksum', () => {
      const token = mintSecret(REFRESH_TOKEN_PREFIX);
      for (let i = REFRESH_TOKEN_PREFIX.length; i < token.length; i++) expect(isWellFormedSecret(REFRESH_TOKEN_PREFIX, mutate(token, i)), `position ${i}`).toBe(false);
    });

    it('refuses wrong lengths, foreign characters and a swapped prefix', () => {
      const token = mintSecret(REFRESH_TOKEN_PREFIX);
      for (const bad of [token.slice(0, -1), `${token}A`, token.replace(/.$/, '='), token.replace(/^tgr_/, 'tgs_'), token.replace(/^tgr_/, 'TGR_'), token.slice(4), '', 'tgr_']) {
        expect(isWellFormedSecret(REFRESH_TOKEN_PREFIX, bad), bad).toBe(false);
      }
    });
  });

  describe('refused before any database lookup', () => {
    function spyOnRefreshTokenStore() {
      const methods = Object.getOwnPropertyNames(RefreshTokenRepository.prototype).filter((m) => m !== 'constructor') as Array<keyof RefreshTokenRepository>;
      const spies = methods.map((m) => vi.spyOn(RefreshTokenRepository.prototype, m));
      const transaction = vi.spyOn(t.app.services.db, 'transaction');
      return { calls: () => spies.reduce((n, s) => n + s.mock.calls.length, 0) + transaction.mock.calls.length };
    }

    async function forgeries() {
      const genuine = (await passwordGrant(t, web, 'alice')).body.refresh_token as string;
      return [mutate(genuine, genuine.length - 1), mutate(genuine, 10), genuine.replace(/^tgr_/, 'tgs_'), genuine.slice(0, -2), `tgr_${'A'.repeat(49)}`];
    }

    it('at the token endpoint: invalid_grant', async () => {
      const forged = await forgeries();
      const store = spyOnRefreshTokenStore();
      for (const token of forged) {
        const res = await refreshGrant(t, web, token);
        expect(res.status).toBe(400);
        expect(res.body.error).toBe('invalid_grant');
      }
      expect(store.calls()).toBe(0);
    });

    it('at revocation: 200 and nothing happens (RFC 7009 §2.2)', async () => {
      const forged = await forgeries();
      const store = spyOnRefreshTokenStore();
      for (const token of forged) {
        const res = await t.request.post('/revoke').set('Authorization', basic(web)).type('form').send({ token, token_type_hint: 'refresh_token' });
        expect(res.status).toBe(200);
      }
      expect(store.calls()).toBe(0);
    });

    it('at introspection: {"active": false}', async () => {
      const forged = await forgeries();
      const store = spyOnRefreshTokenStore();
      for (const token of forged) {
        const res = await t.request.post('/introspect').set('Authorization', basic(rs)).type('form').send({ token });
        expect(res.body).toEqual({ active: false });
      }
      expect(store.calls()).toBe(0);
    });

    it('but a well-formed unknown token is looked up (and refused)', async () => {
      const store = spyOnRefreshTokenStore();
      const res = await refreshGrant(t, web, mintSecret(REFRESH_TOKEN_PREFIX));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
      expect(store.calls()).toBeGreaterThan(0);
    });

    it('a client secret with a bad checksum fails client authentication without looking the client up', async () => {
      const find = vi.spyOn(ClientRepository.prototype, 'find');
      const secret = web.client_secret as string;
      for (const forged of [mutate(secret, secret.length - 1), mutate(secret, 8), secret.replace(/^tgs_/, 'tgr_'), 'hunter2']) {
        const viaBasic = await t.request.post('/token').set('Authorization', basic({ client_id: 'web', client_secret: forged })).type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD });
        expect(viaBasic.status).toBe(401);
        expect(viaBasic.body.error).toBe('invalid_client');
        const viaPost = await t.request.post('/token').type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD, client_id: 'web', client_secret: forged });
        expect(viaPost.status).toBe(401);
      }
      expect(find).not.toHaveBeenCalled();

      // a well-formed wrong secret does reach the store, and fails there
      const wrong = await t.request.post('/token').set('Authorization', basic({ client_id: 'web', client_secret: mintSecret(CLIENT_SECRET_PREFIX) })).type('form').send({ grant_type: 'password', username: 'alice', password: PASSWORD });
      expect(wrong.status).toBe(401);
      expect(find).toHaveBeenCalled();
    });
  });

  describe('stored only as hashes', () => {
    it('keeps client secrets as SHA-256 and nowhere in the clear', async () => {
      const rotated = await t.app.services.clients.rotateSecret('rs');
      const rows = await t.store.db.selectFrom('clients').select(['client_id', 'secret_hash']).orderBy('client_id').execute();
      expect(rows).toEqual([
        { client_id: 'rs', secret_hash: sha256Hex(rotated) },
        { client_id: 'web', secret_hash: sha256Hex(web.client_secret as string) },
      ]);
      const dump = await dumpStore(t.store.db, t.store.dialect);
      for (const secret of [rotated, web.client_secret as string, rs.client_secret as string]) {
        expect(dump).not.toContain(secret);
        expect(dump).not.toContain(secret.slice(4, 40));
      }
    });

    it('keeps refresh tokens as SHA-256 and nowhere in the clear; passwords and access tokens not at all', async () => {
      const issued = (await passwordGrant(t, web, 'alice')).body;
      const rotated = (await refreshGrant(t, web, issued.refresh_token)).body;
      const hashes = (await t.store.db.selectFrom('refresh_tokens').select('token_hash').execute()).map((r) => r.token_hash).sort();
      expect(hashes).toEqual([sha256Hex(issued.refresh_token), sha256Hex(rotated.refresh_token)].sort());
      const dump = await dumpStore(t.store.db, t.store.dialect);
      for (const token of [issued.refresh_token, rotated.refresh_token]) {
        expect(dump).not.toContain(token);
        expect(dump).not.toContain(token.slice(4, 40));
      }
      for (const token of [issued.access_token, rotated.access_token]) expect(dump).not.toContain(token.split('.')[2]);
      expect(dump).not.toContain(PASSWORD);
    });
  });
});
