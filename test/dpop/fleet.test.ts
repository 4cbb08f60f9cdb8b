// RFC 9449 §11.1 across a fleet: instances on one store (a SQLite file here, one PostgreSQL
// database under scripts/with-postgres.sh) share the proof replay cache and the server nonces.
import { generateKeyPair, generateProof } from 'dpop';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock, type SharedTestApps, type TestApp, basic, createSharedTestApps } from '../helpers.js';

const HTU = 'http://localhost:3000/token';

describe('DPoP across instances of a fleet', () => {
  let fleet: SharedTestApps;
  let svc: { client_id: string; client_secret?: string };

  beforeEach(async () => {
    fleet = await createSharedTestApps(2, { clock: new FakeClock(Date.now()), config: { dpop: { requireNonce: true } } });
    svc = await fleet.apps[0]!.addClient('svc', { grants: ['client_credentials'] });
  });
  afterEach(() => fleet.close());

  const send = (t: TestApp, proof: string) => t.request.post('/token').set('Authorization', basic(svc)).set('DPoP', proof).type('form').send({ grant_type: 'client_credentials' });

  it('refuses on one instance a proof another instance accepted (one replay cache for the fleet)', async () => {
    const [a, b] = fleet.apps as [TestApp, TestApp];
    const keys = await generateKeyPair('ES256');
    // a nonce from one instance works on the other: same KEK, same nonce key
    const nonce = (await send(a, await generateProof(keys, HTU, 'POST'))).headers['dpop-nonce'] as string;
    const proof = await generateProof(keys, HTU, 'POST', nonce);
    expect((await send(b, proof)).status).toBe(200);
    const replay = await send(a, proof);
    expect(replay.status).toBe(400);
    expect(replay.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP proof jti was already used' });
  });

  it('lets exactly one of concurrent uses of one proof through, whichever instance each reaches', async () => {
    const keys = await generateKeyPair('ES256');
    const nonce = (await send(fleet.apps[0]!, await generateProof(keys, HTU, 'POST'))).headers['dpop-nonce'] as string;
    const proof = await generateProof(keys, HTU, 'POST', nonce);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => send(fleet.apps[i % 2]!, proof)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_dpop_proof');
  });
});
