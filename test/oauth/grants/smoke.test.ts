import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, createTestApp, decodeJwt, passwordGrant, refreshGrant } from '../../helpers.js';

describe('password and refresh grants (smoke)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(() => t.close());

  it('issues an access token and a refresh token, and rotates the refresh token', async () => {
    const sub = await t.addUser('alice', undefined, ['RETRIEVE_TODOS']);
    const web = await t.addClient('web', { grants: ['password', 'refresh_token'], scope: 'todos:read', audience: 'todo-api' });
    const res = await passwordGrant(t, web, 'alice');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    const { header, payload } = decodeJwt(res.body.access_token);
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    expect(payload).toMatchObject({ sub, aud: 'todo-api', client_id: 'web', scope: 'todos:read', roles: ['RETRIEVE_TODOS'] });
    const r2 = await refreshGrant(t, web, res.body.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.body.refresh_token).not.toBe(res.body.refresh_token);
  });
});
