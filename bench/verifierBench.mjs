// The verifier library's cost per core (issue 19), in a process of its own so that nothing else
// runs in it: verify() of tollgate/verifier with the deny list loaded (poll mode against a running
// Tollgate), the same with a cache of verified tokens, and jose's jwtVerify alone on the same
// tokens, one verification at a time, in turns. Reads its settings as JSON on stdin:
//   { base, issuer, audience, clientId, clientSecret, tokens, revoke, rounds, sliceMs }
// `revoke` is one more token (of the client's, so it may revoke it): after the turns it is
// verified, revoked at the server, and must then be refused by both verifiers, the cached one
// included (the deny list is checked on every call). Prints one JSON line on stdout.
import { importJWK, jwtVerify } from 'jose';
import { createVerifier } from '../dist/src/verifier/index.js';

const input = JSON.parse(await new Promise((resolve) => {
  let s = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => (s += c));
  process.stdin.on('end', () => resolve(s));
}));
const { base, issuer, audience, clientId, clientSecret, tokens, revoke, rounds, sliceMs } = input;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const options = {
  issuer,
  audience,
  jwksUri: `${base}/.well-known/jwks.json`,
  algorithms: ['ES256'],
  denyList: { url: `${base}/deny-list`, clientId, clientSecret, mode: 'poll', pollInterval: 1 },
};
const verifier = createVerifier(options);
// the cache another change adds to the verifier; without it the option is ignored and shows no gain
const cached = createVerifier({ ...options, cache: { maxEntries: 10000 } });
await Promise.all([verifier.ready(), cached.ready()]);

// jose alone: the issuer's key imported once, the same claims checked that jose checks itself
const { header } = decodeHeader(tokens[0]);
const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
const jwk = jwks.keys.find((k) => k.kid === header.kid) ?? jwks.keys[0];
const key = await importJWK(jwk, 'ES256');
const jose = { verify: (t) => jwtVerify(t, key, { issuer, audience, algorithms: ['ES256'], typ: 'at+jwt' }) };

function decodeHeader(token) {
  return { header: JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) };
}

const contestants = [
  { key: 'jose', label: 'jose jwtVerify alone', v: jose },
  { key: 'verifier', label: 'verify() with the deny list', v: verifier },
  { key: 'verifier_cache', label: 'verify() with the deny list and a cache', v: cached },
];

/** Verifies one token after another for `ms` of wall time; the processor time is every thread's. */
async function slice(v, ms, at) {
  let i = at;
  let ops = 0;
  const cpu = process.cpuUsage();
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a batch between clock reads, so reading the clock costs nothing next to a verify
    for (let j = 0; j < 16; j++, ops++) await v.verify(tokens[i++ % tokens.length]);
  }
  const used = process.cpuUsage(cpu);
  return { ops, cpuSeconds: (used.user + used.system) / 1e6, at: i };
}

// warm-up: every token once through each (the cache fills, the JIT settles)
for (const c of contestants) for (let k = 0; k < 2; k++) for (const t of tokens) await c.v.verify(t);
const acc = contestants.map(() => ({ ops: 0, cpuSeconds: 0 }));
let at = 0;
for (let r = 0; r < rounds; r++) {
  for (const [n, c] of contestants.entries()) {
    const s = await slice(c.v, sliceMs, at);
    acc[n].ops += s.ops;
    acc[n].cpuSeconds += s.cpuSeconds;
  }
  at += 7; // each round starts elsewhere in the cycle
}

// the deny list is checked on every call, the cached verifier's too
let problem;
try {
  for (const v of [verifier, cached]) await v.verify(revoke);
  const r = await fetch(`${base}/revoke`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: revoke, token_type_hint: 'access_token' }).toString() });
  if (r.status !== 200) throw new Error(`revocation answered ${r.status}`);
  for (const [name, v] of [['verify()', verifier], ['verify() with a cache', cached]]) {
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) {
      refused = await v.verify(revoke).then(() => false, (e) => e.code === 'ERR_TOKEN_REVOKED');
      if (!refused) await sleep(100);
    }
    if (!refused) problem = `${problem ? `${problem}; ` : ''}${name} still accepts a revoked token after 5 s`;
  }
} catch (e) {
  problem = `the revocation check failed: ${e instanceof Error ? e.message : String(e)}`;
}
verifier.close();
cached.close();

const rows = contestants.map((c, n) => ({
  key: c.key,
  label: c.label,
  ops: acc[n].ops,
  cpuSeconds: acc[n].cpuSeconds,
  cpuUsPerVerify: (acc[n].cpuSeconds * 1e6) / Math.max(acc[n].ops, 1),
  perCoreRate: acc[n].ops / Math.max(acc[n].cpuSeconds, 1e-6),
}));
// exit once written: a timer left by either verifier must not keep the process up
process.stdout.write(`${JSON.stringify({ rows, tokens: tokens.length, rounds, ...(problem ? { problem } : {}) })}\n`, () => process.exit(0));
