// requireToken under hostile input (issue 15 item 3): a token whose header `alg` held CR LF, NUL or
// non-ASCII made the to-do API answer 500, because the verifier put `alg` into its message and the
// middleware put the message into WWW-Authenticate, which Node refuses to send. Fuzzed with
// fast-check: hostile Authorization headers, hostile token headers and claims (signed, so they get
// past the signature), hostile configuration; every answer is a 4xx/503 or a pass, never a throw,
// and every WWW-Authenticate is a header Node accepts and RFC 6750 §3 allows.
import http from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AccessTokenClaims, type BearerContext, VERIFICATION_ERROR_CODES, VerificationError, type Verifier, createVerifier, requireToken } from '../../src/verifier/index.js';
import { type JwksServer, makeSigningKey, signRaw, startJwksServer } from './fixtures.js';

const ISSUER = 'https://issuer.example';

// realm: a quoted-string of printable ASCII with '"' and '\' escaped; error: a token;
// error_description and scope: %x20-21 / %x23-5B / %x5D-7E (RFC 6750 §3)
const QUOTED = String.raw`"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"`;
const RFC6750 = String.raw`"[\x20\x21\x23-\x5b\x5d-\x7e]*"`;
// a DPoP failure (ERR_DPOP_*) is challenged with the DPoP scheme and its algs (RFC 9449 §7.1)
const CHALLENGE = new RegExp(String.raw`^(?:Bearer|DPoP) realm=${QUOTED}(?:, error="[a-z_]+", error_description=${RFC6750}(?:, scope=${RFC6750})?)?(?:, algs="[A-Za-z0-9 ]*")?$`);

/** A Koa-shaped context whose `set` refuses what Node's ServerResponse would refuse. */
function context(authorization: string, querystring: string) {
  const headers = new Map<string, string>();
  const ctx: BearerContext = {
    get: (field) => (field.toLowerCase() === 'authorization' ? authorization : ''),
    set(field, value) {
      http.validateHeaderName(field);
      http.validateHeaderValue(field, value); // throws ERR_INVALID_CHAR on CR, LF, NUL, > U+00FF
      headers.set(field.toLowerCase(), value);
    },
    querystring,
    status: 404,
    body: undefined,
    state: {},
  };
  return { ctx, headers };
}

async function answer(verifier: Verifier, options: Parameters<typeof requireToken>[1], authorization: string, querystring = '') {
  const { ctx, headers } = context(authorization, querystring);
  await requireToken(verifier, options)(ctx, async () => {
    ctx.status = 200;
  });
  return { status: ctx.status, challenge: headers.get('www-authenticate') };
}

function expectSafe({ status, challenge }: { status: number; challenge: string | undefined }) {
  expect([200, 400, 401, 403, 503]).toContain(status);
  if (status === 200 || status === 503) expect(challenge).toBeUndefined();
  else expect(challenge).toMatch(CHALLENGE);
}

// strings that break headers, quoting and JSON: control characters, quotes, backslashes,
// non-Latin-1 and lone surrogates, challenge syntax, and sizes past every limit
const nasty = fc.constantFrom('\r\n', '\r', '\n', '\u0000', '\u007f', '\t', '"', '\\', '\\"', 'é', '€', '\u2028', '\ud800', '\udfff', '😀', ', error="x"', 'Bearer ', '=');
const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.oneof(nasty, fc.string({ unit: 'binary', maxLength: 6 })), { maxLength: 10 }).map((parts) => parts.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 4000 }).chain((n) => nasty.map((s) => s.repeat(n))) },
);

describe('requireToken, fuzzed', () => {
  let jwks: JwksServer;
  let key: Awaited<ReturnType<typeof makeSigningKey>>;
  let verifier: Verifier;

  beforeAll(async () => {
    key = await makeSigningKey('k1');
    jwks = await startJwksServer([key.jwk]);
    verifier = createVerifier({ issuer: ISSUER, audience: 'todo-api', jwksUri: jwks.url });
    await verifier.ready();
  });
  afterAll(async () => {
    verifier.close();
    await jwks.close();
  });

  it('answers hostile Authorization headers, query strings, verifier messages and configuration without throwing', async () => {
    const authorization = fc.oneof(
      hostile,
      hostile.map((s) => `Bearer ${s}`),
      fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,40}=*$/).map((t) => `Bearer ${t}`),
      fc.constantFrom('', 'Bearer', 'Basic dXNlcjpwYXNz', `Bearer ${'a'.repeat(20_000)}`),
    );
    // what a verifier could hand back: any code with a message that reflects anything, or claims
    // carrying hostile roles and scope
    const outcome = fc.oneof(
      fc.tuple(fc.constantFrom(...VERIFICATION_ERROR_CODES), hostile).map(([code, message]) => new VerificationError(code, message)),
      fc.record({ sub: hostile, scope: hostile, roles: fc.array(hostile, { maxLength: 3 }) }),
    );
    const options = fc.record({ realm: hostile, roles: fc.array(hostile, { maxLength: 2 }), scope: hostile }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(authorization, fc.oneof(fc.constant(''), hostile), outcome, options, async (header, query, result, opts) => {
        const stub: Verifier = {
          issuer: ISSUER,
          audience: 'todo-api',
          ready: async () => {},
          close: () => {},
          async verify() {
            if (result instanceof VerificationError) throw result;
            return { iss: ISSUER, aud: 'todo-api', exp: 2e9, iat: 1e9, jti: 'j', client_id: 'web', ...result } as AccessTokenClaims;
          },
        };
        expectSafe(await answer(stub, opts, header, query));
      }),
      { numRuns: 500 },
    );
  });

  it('answers tokens with hostile headers and claims, signed by the real key, without throwing', async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = fc.record(
      {
        alg: fc.oneof(fc.constant('ES256'), hostile),
        kid: fc.oneof(fc.constant('k1'), hostile),
        typ: fc.oneof(fc.constant('at+jwt'), hostile),
        extra: hostile,
      },
      { requiredKeys: ['alg'] },
    );
    const claims = fc.record(
      {
        iss: fc.oneof(fc.constant(ISSUER), hostile),
        aud: fc.oneof(fc.constant('todo-api'), hostile),
        sub: hostile,
        client_id: hostile,
        jti: hostile,
        scope: hostile,
        roles: fc.array(fc.oneof(fc.constant('RETRIEVE_TODOS'), hostile), { maxLength: 3 }),
        exp: fc.oneof(fc.constant(now + 300), fc.integer()),
        iat: fc.oneof(fc.constant(now), fc.integer()),
      },
      { requiredKeys: ['iss', 'aud', 'exp', 'iat'] },
    );
    // and tokens that are not even JSON inside: hostile segments, base64url-encoded
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    const raw = fc.tuple(hostile, hostile, hostile).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${b64(s)}`);
    const token = fc.oneof(
      { weight: 3, arbitrary: fc.tuple(header, claims).map(([h, c]) => ({ h, c })) },
      { weight: 1, arbitrary: raw },
    );
    await fc.assert(
      fc.asyncProperty(token, async (t) => {
        const jwt = typeof t === 'string' ? t : await signRaw(t.h, t.c, key.privateKey);
        expectSafe(await answer(verifier, { roles: ['RETRIEVE_TODOS'], scope: 'todos:read' }, `Bearer ${jwt}`));
      }),
      { numRuns: 300 },
    );
  });
});
