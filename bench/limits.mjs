// The machine's limits for the CPU-bound steps, each in a fresh process so nothing else shares it:
//   node bench/limits.mjs argon2 <seconds> <concurrency> <memoryCostKiB> <timeCost> <parallelism>
//   node bench/limits.mjs es256 <seconds> <concurrency>
// Prints {"ops", "seconds", "perSecond", "cpuSeconds"} on stdout: cpuSeconds is this process's
// processor time (user + system, every thread, libuv's pool included) over the measured operations.
import argon2 from 'argon2';
import crypto from 'node:crypto';
import { SignJWT, importJWK } from 'jose';

const [kind, secondsArg, concurrencyArg, ...rest] = process.argv.slice(2);
const seconds = Number(secondsArg);
const concurrency = Number(concurrencyArg);

/** Keeps `concurrency` operations in flight for `seconds`; counts completions. */
async function saturate(op) {
  await op(); // warm: the first call loads and compiles what the rest reuse
  let ops = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const until = start + seconds * 1000;
  const lane = async () => {
    while (performance.now() < until) {
      await op();
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsed = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { ops, seconds: elapsed, perSecond: ops / elapsed, cpuSeconds: (used.user + used.system) / 1e6 };
}

let result;
if (kind === 'argon2') {
  const [memoryCost, timeCost, parallelism] = rest.map(Number);
  const password = 'correct horse battery staple';
  const hash = await argon2.hash(password, { type: argon2.argon2id, memoryCost, timeCost, parallelism });
  result = await saturate(async () => {
    if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed');
  });
} else if (kind === 'es256') {
  // the same claims and header shape as one of Tollgate's access tokens
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = await importJWK({ ...privateKey.export({ format: 'jwk' }), alg: 'ES256' }, 'ES256');
  result = await saturate(async () => {
    const iat = Math.floor(Date.now() / 1000);
    await new SignJWT({ iss: 'http://127.0.0.1:3000', sub: crypto.randomUUID(), aud: 'bench-api', exp: iat + 300, iat, jti: crypto.randomUUID(), client_id: 'bench-service', scope: 'api:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench', typ: 'at+jwt' })
      .sign(key);
  });
} else {
  process.stderr.write('usage: limits.mjs argon2|es256 <seconds> <concurrency> [...]\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
