// DPoP (issue 17): client_credentials with a fresh DPoP proof on every request, in turns with the
// same request without one, on one Tollgate server; each row also says the server's processor time
// per request (user + system over the responses it answered), the figure the target is set in.
import crypto from 'node:crypto';
import path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { ccBody } from './specs.mjs';
import { tokenResponse } from './answers.mjs';
import { lane } from './lane.mjs';
import { note, ROOT } from './options.mjs';
import { startTollgate } from './servers.mjs';
import { runGroup } from './turns.mjs';

/** `count` proofs of one ES256 key for POST `htu`, each with its own jti (minted by the driver, ahead). */
export async function dpopProofs(htu) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return async (count) => {
    const iat = Math.floor(Date.now() / 1000);
    const out = [];
    for (let i = 0; i < count; i++) {
      out.push({ dpop: await new SignJWT({ htm: 'POST', htu, jti: crypto.randomUUID(), iat }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).sign(privateKey) });
    }
    return out;
  };
}

export async function dpopSection({ env, tmp, bench, requests }) {
  note('DPoP: client_credentials with and without a proof, in turns');
  const tollgate = await startTollgate(env, tmp, [path.join(ROOT, 'dist', 'src', 'main.js')], [], 'tollgate-dpop.log');
  const plain = { key: 'client_credentials', label: 'client_credentials', path: '/token', headers: requests.serviceAuth, fixedBody: ccBody, expect: tokenResponse };
  const bound = { ...plain, key: 'client_credentials_dpop', label: 'client_credentials + DPoP proof', mintHeaders: await dpopProofs(`${bench.config.issuer}/token`), expect: (j) => (j?.token_type === 'DPoP' ? undefined : `token_type ${j?.token_type}`) };
  const lanes = [await lane('tollgate', tollgate.base, plain), await lane('tollgate', tollgate.base, bound)];
  // each row's serverCpuUsPerRequest: the server's processor time in that lane's turns, per response
  const rows = await runGroup(lanes, { tollgate: tollgate.proc.pid });
  await tollgate.proc.stop();
  return { rows };
}
