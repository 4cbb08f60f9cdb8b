// RFC 9449 at the token endpoint, driven by the `dpop` package (a client library nobody here wrote)
// for the proofs a client makes, and by hand-made proofs (./proofs.ts) for the ones no library
// would make. Every §4.3 check has a failing case.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock, PASSWORD, type TestApp, basic, createTestApp, decodeJwt } from '../helpers.js';
import { hmacProof, proofKey, signProof, unsignedProof } from './proofs.js';

const HTU = 'http://localhost:3000/token';

describe('DPoP at the token endpoint (RFC 9449)', () => {
  let t: TestApp;
  let clock: FakeClock;
  let svc: { client_id: string; client_secret?: string };
  let web: { client_id: string; client_secret?: string };

  beforeEach(async () => {
    // proofs from the `dpop` package carry the real time: the server's clock starts there and
    // moves only when a test moves it
    clock = new FakeClock(Date.now());
    t = await createTestApp({ clock });
    svc = await t.addClient('svc', { grants: ['client_credentials'] });
    web = await t.addClient('web', { grants: ['password', 'refresh_token'] });
    await t.addUser('alice');
  });
  afterEach(() => t.close());

  const clientCredentials = (proof?: string | string[]) => {
    const req = t.request.post('/token').set('Authorization', basic(svc)).type('form');
    // an array goes out as one header line per value (Node's setHeader)
    if (proof !== undefined) req.set('DPoP', proof as string);
    return req.send({ grant_type: 'client_credentials' });
  };
  const password = (proof?: string) => {
    const req = t.request.post('/token').set('Authorization', basic(web)).type('form');
    if (proof !== undefined) req.set('DPoP', proof);
    return req.send({ grant_type: 'password', username: 'alice', password: PASSWORD });
  };
  const refresh = (refreshToken: string, proof?: string) => {
    const req = t.request.post('/token').set('Authorization', basic(web)).type('form');
    if (proof !== undefined) req.set('DPoP', proof);
    return req.send({ grant_type: 'refresh_token', refresh_token: refreshToken });
  };
  const now = () => Math.floor(clock.now() / 1000);

  describe('binds tokens to the proof key', () => {
    it('answers client_credentials with token_type DPoP and cnf.jkt = the key thumbprint (§5, §6.1)', async () => {
      const keys = await generateKeyPair('ES256');
      const res = await clientCredentials(await generateProof(keys, HTU, 'POST'));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token_type: 'DPoP', expires_in: 300 });
      expect(decodeJwt(res.body.access_token).payload.cnf).toEqual({ jkt: await calculateThumbprint(keys.publicKey) });
    });

    it('accepts Ed25519, RS256 and PS256 proofs too', async () => {
      for (const alg of ['Ed25519', 'RS256', 'PS256'] as const) {
        const keys = await generateKeyPair(alg);
        const res = await clientCredentials(await generateProof(keys, HTU, 'POST'));
        expect(res.status, alg).toBe(200);
        expect(decodeJwt(res.body.access_token).payload.cnf).toEqual({ jkt: await calculateThumbprint(keys.publicKey) });
      }
    });

    it('answers Bearer without a proof, as before', async () => {
      const res = await clientCredentials();
      expect(res.body.token_type).toBe('Bearer');
      expect(decodeJwt(res.body.access_token).payload.cnf).toBeUndefined();
    });

    it('binds the password grant and every refresh of its family to the key (§5)', async () => {
      const keys = await generateKeyPair('ES256');
      const jkt = await calculateThumbprint(keys.publicKey);
      const first = await password(await generateProof(keys, HTU, 'POST'));
      expect(first.body.token_type).toBe('DPoP');
      expect(decodeJwt(first.body.access_token).payload.cnf).toEqual({ jkt });
      const second = await refresh(first.body.refresh_token, await generateProof(keys, HTU, 'POST'));
      expect(second.status).toBe(200);
      expect(second.body.token_type).toBe('DPoP');
      expect(decodeJwt(second.body.access_token).payload.cnf).toEqual({ jkt });
      expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    });

    it('matches htu after RFC 3986 normalisation (case of scheme and host, default path)', async () => {
      const key = await proofKey();
      const res = await clientCredentials(await signProof(key, { htu: 'HTTP://LocalHost:3000/token', iat: now() }));
      expect(res.status).toBe(200);
    });
  });

  describe('refuses a bad proof with 400 invalid_dpop_proof, saying which check failed (§4.3)', () => {
    async function expectRefused(proof: string | string[], description: RegExp) {
      const res = await clientCredentials(proof);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_dpop_proof');
      expect(res.body.error_description).toMatch(description);
      expect(res.headers['cache-control']).toBe('no-store');
    }

    it('refuses two DPoP headers (step 1)', async () => {
      const keys = await generateKeyPair('ES256');
      await expectRefused([await generateProof(keys, HTU, 'POST'), await generateProof(keys, HTU, 'POST')], /exactly one DPoP header/);
    });
    it('refuses something that is not a JWS (step 2)', async () => {
      await expectRefused('not-a-jwt', /not a well-formed JWS/);
    });
    it('refuses a wrong typ (step 4)', async () => {
      await expectRefused(await signProof(await proofKey(), { htu: HTU, iat: now(), header: { typ: 'JWT' } }), /typ/);
    });
    it('refuses alg none (step 5)', async () => {
      await expectRefused(unsignedProof(await proofKey(), { htu: HTU, iat: now() }), /alg/);
    });
    it('refuses HS256 with the symmetric key in the header (step 5)', async () => {
      await expectRefused(await hmacProof({ htu: HTU, iat: now() }), /alg/);
    });
    it('refuses an asymmetric alg that is not on the configured list (step 5)', async () => {
      await expectRefused(await signProof(await proofKey('ES512'), { htu: HTU, iat: now() }), /alg/);
    });
    it('refuses a private key in jwk (step 7)', async () => {
      const key = await proofKey();
      await expectRefused(await signProof(key, { htu: HTU, iat: now(), header: { jwk: key.privateJwk } }), /public key/);
    });
    it("refuses a signature by another key than the header's jwk (step 6)", async () => {
      const key = await proofKey();
      const other = await proofKey();
      await expectRefused(await signProof(key, { htu: HTU, iat: now(), header: { jwk: other.publicJwk } }), /signature/);
    });
    it('refuses a proof without jti (step 3)', async () => {
      await expectRefused(await signProof(await proofKey(), { htu: HTU, iat: now(), omit: ['jti'] }), /jti/);
    });
    it('refuses a wrong htm (step 8)', async () => {
      await expectRefused(await generateProof(await generateKeyPair('ES256'), HTU, 'GET'), /htm/);
    });
    it('refuses htu with a query (step 9)', async () => {
      await expectRefused(await generateProof(await generateKeyPair('ES256'), `${HTU}?x=1`, 'POST'), /htu/);
    });
    it('refuses htu of another endpoint (step 9)', async () => {
      await expectRefused(await generateProof(await generateKeyPair('ES256'), 'http://localhost:3000/introspect', 'POST'), /htu/);
    });
    it('refuses an iat older than the window (step 11)', async () => {
      const proof = await generateProof(await generateKeyPair('ES256'), HTU, 'POST');
      clock.advance(60 + 5 + 1);
      await expectRefused(proof, /iat/);
    });
    it('refuses an iat in the future beyond the window (step 11)', async () => {
      await expectRefused(await signProof(await proofKey(), { htu: HTU, iat: now() + 120 }), /iat/);
    });
    it('refuses a replayed jti (step 12), and says so', async () => {
      const proof = await generateProof(await generateKeyPair('ES256'), HTU, 'POST');
      expect((await clientCredentials(proof)).status).toBe(200);
      await expectRefused(proof, /already used/);
    });
    it('never echoes the proof in the description', async () => {
      const res = await clientCredentials('eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.');
      expect(res.body.error_description).not.toContain('eyJ');
    });
    it('counts refusals by reason in tollgate_dpop_proofs_refused_total', async () => {
      await clientCredentials(await generateProof(await generateKeyPair('ES256'), HTU, 'GET'));
      const metrics = await t.request.get('/metrics');
      expect(metrics.text).toMatch(/tollgate_dpop_proofs_refused_total\{reason="htm"\} 1/);
    });
  });

  describe('bound refresh tokens (§5)', () => {
    async function boundSession() {
      const keys = await generateKeyPair('ES256');
      const res = await password(await generateProof(keys, HTU, 'POST'));
      expect(res.status).toBe(200);
      return { keys, refreshToken: res.body.refresh_token as string };
    }

    it('refuses a refresh without a proof with invalid_grant, and leaves the token unspent and the family alive', async () => {
      const { keys, refreshToken } = await boundSession();
      const stolen = await refresh(refreshToken);
      expect(stolen.status).toBe(400);
      expect(stolen.body.error).toBe('invalid_grant');
      const owner = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      expect(owner.status).toBe(200);
    });

    it('refuses a refresh with a proof of another key, and leaves the family alive', async () => {
      const { keys, refreshToken } = await boundSession();
      const thief = await generateKeyPair('ES256');
      const stolen = await refresh(refreshToken, await generateProof(thief, HTU, 'POST'));
      expect(stolen.body.error).toBe('invalid_grant');
      expect((await refresh(refreshToken, await generateProof(keys, HTU, 'POST'))).status).toBe(200);
    });

    it('does not let a thief without the key revoke the family with a spent token (no replay without the key)', async () => {
      const { keys, refreshToken } = await boundSession();
      const next = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      const stolen = await refresh(refreshToken); // spent, presented without the key
      expect(stolen.body.error).toBe('invalid_grant');
      expect((await refresh(next.body.refresh_token, await generateProof(keys, HTU, 'POST'))).status).toBe(200);
    });

    it('audits the misuse as dpop.binding_mismatch', async () => {
      const { refreshToken } = await boundSession();
      await refresh(refreshToken);
      const events = await t.store.db.selectFrom('audit_events').selectAll().where('type', '=', 'dpop.binding_mismatch').execute();
      expect(events).toHaveLength(1);
      expect(events[0]?.client_id).toBe('web');
      expect(JSON.parse(events[0]?.detail ?? '{}')).toMatchObject({ proof: 'no proof' });
    });

    it('still detects reuse of a spent bound token presented with the key (RFC 9700 §4.14.2)', async () => {
      const { keys, refreshToken } = await boundSession();
      const next = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      clock.advance(1);
      const replay = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      expect(replay.body.error).toBe('invalid_grant');
      expect((await refresh(next.body.refresh_token, await generateProof(keys, HTU, 'POST'))).body.error).toBe('invalid_grant');
    });

    it('keeps the retry grace window for bound families', async () => {
      await t.app.services.clients.update('web', { refreshGraceSeconds: 10 });
      const { keys, refreshToken } = await boundSession();
      const first = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      const retry = await refresh(refreshToken, await generateProof(keys, HTU, 'POST'));
      expect(retry.status).toBe(200);
      expect(retry.body.refresh_token).toBe(first.body.refresh_token);
    });

    it('keeps a family started without a proof unbound: a proof then gets a DPoP token, and later refreshes need none', async () => {
      const start = await password();
      const keys = await generateKeyPair('ES256');
      const withProof = await refresh(start.body.refresh_token, await generateProof(keys, HTU, 'POST'));
      expect(withProof.body.token_type).toBe('DPoP');
      const without = await refresh(withProof.body.refresh_token);
      expect(without.status).toBe(200);
      expect(without.body.token_type).toBe('Bearer');
    });
  });

  describe('per-client policy (§5.2 dpop_bound_access_tokens)', () => {
    it('refuses a token request without a proof from a client that requires one', async () => {
      await t.app.services.clients.update('svc', { requireDpop: true });
      const res = await clientCredentials();
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'this client must send a DPoP proof with every token request' });
      expect((await clientCredentials(await generateProof(await generateKeyPair('ES256'), HTU, 'POST'))).status).toBe(200);
    });

    it('publishes dpop_signing_alg_values_supported in the metadata (§5.1)', async () => {
      const res = await t.request.get('/.well-known/oauth-authorization-server');
      expect(res.body.dpop_signing_alg_values_supported).toEqual(['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256']);
    });
  });

  describe('introspection and revocation of bound tokens', () => {
    it('introspects a bound access token with cnf and token_type DPoP (§6.2), and revokes it as before', async () => {
      const keys = await generateKeyPair('ES256');
      const res = await clientCredentials(await generateProof(keys, HTU, 'POST'));
      const token = res.body.access_token as string;
      const introspect = () => t.request.post('/introspect').set('Authorization', basic(svc)).type('form').send({ token });
      expect((await introspect()).body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await calculateThumbprint(keys.publicKey) } });
      expect((await t.request.post('/revoke').set('Authorization', basic(svc)).type('form').send({ token })).status).toBe(200);
      expect((await introspect()).body).toEqual({ active: false });
    });
  });

  describe('the replay cache', () => {
    it('writes one row per accepted proof and none for a refused one, pruned after the window', async () => {
      const db = t.store.db;
      const keys = await generateKeyPair('ES256');
      await clientCredentials(await generateProof(keys, HTU, 'POST'));
      await clientCredentials(await generateProof(keys, HTU, 'GET'));
      expect(await db.selectFrom('dpop_jti').selectAll().execute()).toHaveLength(1);
      clock.advance(60 + 5 + 1);
      await t.app.tick();
      expect(await db.selectFrom('dpop_jti').selectAll().execute()).toHaveLength(0);
    });
  });
});

describe('DPoP server nonces (RFC 9449 §8)', () => {
  it('answers use_dpop_nonce with a DPoP-Nonce header, accepts the nonce, and rotates it', async () => {
    const clock = new FakeClock(Date.now());
    const t = await createTestApp({ clock, config: { dpop: { requireNonce: true, nonceLifetimeSeconds: 60 } } });
    try {
      const svc = await t.addClient('svc', { grants: ['client_credentials'] });
      const keys = await generateKeyPair('ES256');
      const send = (proof: string) => t.request.post('/token').set('Authorization', basic(svc)).set('DPoP', proof).type('form').send({ grant_type: 'client_credentials' });
      const first = await send(await generateProof(keys, HTU, 'POST'));
      expect(first.status).toBe(400);
      expect(first.body.error).toBe('use_dpop_nonce');
      const nonce = first.headers['dpop-nonce'] as string;
      expect(nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      const second = await send(await generateProof(keys, HTU, 'POST', nonce));
      expect(second.status).toBe(200);
      expect(second.headers['dpop-nonce']).toBe(nonce);
      // the previous slot's nonce still works; two slots later it is stale
      clock.advance(60);
      const later = await signProof(await proofKey(), { htu: HTU, iat: Math.floor(clock.now() / 1000), nonce });
      expect((await send(later)).status).toBe(200);
      clock.advance(60);
      const stale = await send(await signProof(await proofKey(), { htu: HTU, iat: Math.floor(clock.now() / 1000), nonce }));
      expect(stale.body.error).toBe('use_dpop_nonce');
      expect(stale.headers['dpop-nonce']).not.toBe(nonce);
    } finally {
      await t.close();
    }
  });
});
