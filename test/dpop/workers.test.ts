// RFC 9449 §11.1 across processes: `tollgate serve --workers 2` (one SQLite file, two worker
// processes) accepts a DPoP proof once, whichever worker each copy of it reaches. The client is
// set up with the CLI's --require-dpop, as an operator would.
import { generateKeyPair, generateProof } from 'dpop';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogLine, type WorkersServer, startWorkers } from '../e2e/workersServer.js';

let w: WorkersServer;
let url: string;
let secret: string;
let logs: LogLine[];
const cli = (args: string[]) => w.cli(args);
const until = <T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms?: number) => w.until(what, probe, ms);

/** A token request on a fresh connection, so the cluster may hand it to either worker. */
const token = (proof?: string) =>
  fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}`,
      Connection: 'close',
      ...(proof ? { DPoP: proof } : {}),
    },
    body: 'grant_type=client_credentials',
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string; error_description?: string; token_type?: string } }));

beforeAll(async () => {
  w = await startWorkers({
    prefix: 'tollgate-dpop-workers-',
    config: { log: { level: 'info' } },
    async setup(cli) {
      secret = (JSON.parse(await cli(['clients', 'add', 'svc', '--grant', 'client_credentials', '--require-dpop', '--json'])) as { client_secret: string }).client_secret;
    },
  });
  ({ url, logs } = w);
});

afterAll(() => w?.stop());

describe('DPoP with tollgate serve --workers 2', () => {
  it('shows the policy set with clients add --require-dpop, and enforces it', async () => {
    expect(JSON.parse(await cli(['clients', 'show', 'svc', '--json']))).toMatchObject({ client_id: 'svc', require_dpop: true });
    const res = await token();
    expect(res).toEqual({ status: 400, body: { error: 'invalid_dpop_proof', error_description: 'this client must send a DPoP proof with every token request' } });
  });

  it('accepts one proof once across both workers: 20 concurrent copies, one 200', async () => {
    const keys = await generateKeyPair('ES256');
    const proof = await generateProof(keys, `${url}/token`, 'POST');
    const before = logs.length;
    const results = await Promise.all(Array.from({ length: 20 }, () => token(proof)));
    const served = await until('the request logs', () => {
      const lines = logs.slice(before).filter((l) => l.msg === 'request' && l.path === '/token');
      return lines.length >= 20 ? lines : undefined;
    });
    expect(new Set(served.map((l) => l.pid)).size).toBe(2);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.find((r) => r.status === 200)?.body.token_type).toBe('DPoP');
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'the DPoP proof jti was already used' });
  });

  it('turns the policy off with clients update --no-require-dpop', async () => {
    expect(JSON.parse(await cli(['clients', 'update', 'svc', '--no-require-dpop', '--json']))).toMatchObject({ require_dpop: false });
    // the running workers see the change within the client cache's second
    await until('the policy change', async () => ((await token()).status === 200 ? true : undefined));
  });
});
