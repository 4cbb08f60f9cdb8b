// RFC 6749 §4.4: a confidential client gets an access token for itself; no refresh token.
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, basic, createTestApp, decodeJwt } from '../../helpers.js';

type Client = { client_id: string; client_secret?: string };

describe('client_credentials grant', () => {
  let t: TestApp;
  let worker: Client;

  beforeEach(async () => {
    t = await createTestApp();
    worker = await t.addClient('billing-worker', { grants: ['client_credentials'], scope: 'invoices:read invoices:write', audience: 'billing-api' });
  });
  afterEach(() => t.close());

  const grant = (client: Client, extra: Record<string, string> = {}) =>
    t.request.post('/token').set('Authorization', basic(client)).type('form').send({ grant_type: 'client_credentials', ...extra });

  it('issues an access token whose sub is the client itself, and no refresh token', async () => {
    const res = await grant(worker);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'invoices:read invoices:write' });
    expect(res.body).not.toHaveProperty('refresh_token');

    const jwks = JSON.parse((await t.request.get('/.well-known/jwks.json')).text);
    const { payload, protectedHeader } = await jwtVerify(res.body.access_token, createLocalJWKSet(jwks), {
      issuer: 'http://localhost:3000',
      audience: 'billing-api',
      typ: 'at+jwt',
      currentDate: new Date(t.clock.now()),
    });
    expect(protectedHeader.kid).toBeTypeOf('string');
    expect(payload).toMatchObject({ sub: 'billing-worker', client_id: 'billing-worker', scope: 'invoices:read invoices:write' });
    expect(Number(payload.exp) - Number(payload.iat)).toBe(300);
    expect(payload.jti).toBeTypeOf('string');
    // no user and no refresh family behind it
    expect(payload).not.toHaveProperty('sid');
    expect(payload).not.toHaveProperty('roles');
    expect(await t.store.db.selectFrom('refresh_token_families').selectAll().execute()).toHaveLength(0);
  });

  it('authenticates with client_secret_post too', async () => {
    const res = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: worker.client_id, client_secret: worker.client_secret ?? '' });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token).payload.sub).toBe('billing-worker');
  });

  it('grants a narrower scope when asked, and refuses one beyond the allowed scopes', async () => {
    const narrow = await grant(worker, { scope: 'invoices:read' });
    expect(narrow.status).toBe(200);
    expect(narrow.body.scope).toBe('invoices:read');
    expect(decodeJwt(narrow.body.access_token).payload.scope).toBe('invoices:read');

    const wide = await grant(worker, { scope: 'invoices:read admin' });
    expect(wide.status).toBe(400);
    expect(wide.body.error).toBe('invalid_scope');
  });

  it("uses the client's own access-token lifetime", async () => {
    const quick = await t.addClient('quick', { grants: ['client_credentials'], accessTokenTtl: 30 });
    const res = await grant(quick);
    expect(res.body.expires_in).toBe(30);
    const { payload } = decodeJwt(res.body.access_token);
    expect(Number(payload.exp) - Number(payload.iat)).toBe(30);
    expect(payload.aud).toBe('quick');
  });

  it('refuses a confidential client that is not allowed the grant with unauthorized_client', async () => {
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    const res = await grant(web);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
  });

  // RFC 6749 §4.4 "MUST only be used by confidential clients". A public client identifies itself
  // by client_id (RFC 6749 §2.3 "none"), so it gets unauthorized_client: the identified client is
  // not authorized for this grant type (§5.2), as Keycloak and node-oidc-provider answer.
  it('refuses a public client with unauthorized_client', async () => {
    await t.addClient('spa', { public: true, grants: ['password'] });
    const res = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'spa' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
  });

  it('refuses a public client even if its row claims the grant', async () => {
    await t.addClient('spa', { public: true, grants: ['password'] });
    await t.store.db.updateTable('clients').set({ grants: 'password client_credentials' }).where('client_id', '=', 'spa').execute();
    const res = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: 'spa' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
    expect(res.body).not.toHaveProperty('access_token');
  });

  it('cannot be configured for a public client', async () => {
    await expect(t.app.services.clients.add('spa2', { public: true, grants: ['client_credentials'] })).rejects.toThrow(/public/);
  });

  it('refuses a wrong secret with 401 invalid_client', async () => {
    const res = await grant({ client_id: worker.client_id, client_secret: 'tgs_not-the-secret' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('refuses a confidential client that sends no secret with 401 invalid_client', async () => {
    const res = await t.request.post('/token').type('form').send({ grant_type: 'client_credentials', client_id: worker.client_id });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('stops working for a removed client', async () => {
    await t.app.services.clients.remove('billing-worker');
    const res = await grant(worker);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('stops accepting the old secret once it is rotated', async () => {
    const secret = await t.app.services.clients.rotateSecret('billing-worker');
    expect((await grant(worker)).status).toBe(401);
    expect((await grant({ client_id: worker.client_id, client_secret: secret })).status).toBe(200);
  });
});
