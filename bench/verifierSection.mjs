// The verifier library (issue 19, the table's last line): what verify() of tollgate/verifier costs
// per core, with the deny list loaded and with a cache of verified tokens, against jose's
// jwtVerify alone on the same tokens. bench/verifierBench.mjs measures, in a process of its own,
// against a Tollgate server started here (its JWKS and its deny-list feed, polled).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { mallocEnv } from '../dist/src/mallocEnv.js';
import { BENCH, note, opts, ROOT } from './options.mjs';
import { startTollgate } from './servers.mjs';

function runChild(input) {
  return new Promise((resolve, reject) => {
    // the server's malloc settings, as for the other limits
    const child = spawn(process.execPath, [path.join(BENCH, 'verifierBench.mjs')], { cwd: ROOT, env: { ...process.env, ...mallocEnv() }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (err = (err + s).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), (input.rounds * 3 * input.sliceMs) + 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`verifierBench.mjs exited with ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()));
    });
    child.stdin.end(JSON.stringify(input));
  });
}

export async function verifierSection({ env, tmp, bench, requests, seed, who }) {
  note('verifier: verify() with the deny list, with a cache, and jose jwtVerify alone, in turns (a process of its own)');
  const tollgate = await startTollgate(env, tmp, [path.join(ROOT, 'dist', 'src', 'main.js')], [], 'tollgate-verifier.log');
  try {
    // the user's access tokens (with a sid, so both deny-list keys are looked up), and one of the
    // service's own that it revokes at the end
    const tokens = await requests.mintAccess();
    const [revoke] = await seed.mintAccessTokens(bench, { sub: who.service.id, clientId: who.service.id, count: 1 });
    const result = await runChild({
      base: tollgate.base,
      issuer: bench.config.issuer,
      audience: seed.AUDIENCE,
      clientId: who.service.id,
      clientSecret: who.service.secret,
      tokens,
      revoke,
      rounds: opts.seconds,
      sliceMs: 1000,
    });
    for (const r of result.rows) note(`    ${r.label}: ${r.cpuUsPerVerify.toFixed(1)} µs CPU per verify, ${Math.round(r.perCoreRate)}/s per core`);
    if (result.problem) note(`    check failed: ${result.problem}`);
    return result;
  } finally {
    await tollgate.proc.stop();
  }
}
