// GET /readyz (a load balancer's question "send me traffic?"): 200 once the store answers and an
// active signing key is loaded, 503 otherwise; GET /healthz (liveness) does not depend on either.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestApp, createTestApp } from '../helpers.js';

describe('GET /readyz', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(() => t.close());

  it('answers 200 when the store is reachable and an active key is loaded, never cached', async () => {
    const res = await t.request.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ready', store: 'ok', signing_key: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('answers 503 when the store is gone (closed under the running app), while /healthz stays 200', async () => {
    await t.store.close();
    const res = await t.request.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'not ready', store: 'unreachable' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await t.request.get('/healthz')).status).toBe(200);
  });

  it('answers 503 when no active signing key is loaded', async () => {
    const [active] = await t.app.services.keys.repo.byState('active');
    await t.app.services.keys.repo.transition(active!.kid, 'active', 'retired', t.clock.now());
    await t.app.services.keyring.refresh();
    const res = await t.request.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'not ready', store: 'ok', signing_key: 'missing' });
  });
});
