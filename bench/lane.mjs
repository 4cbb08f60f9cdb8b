// A lane: one kind of request against one server (or a fleet), ready to be measured in slices.
import { probe } from './answers.mjs';
import { Pool, cannon, cycle } from './cannon.mjs';
import { note, opts } from './options.mjs';

// a pool's first fill covers the warm-up at up to this rate; the rest is sized from the warm-up
const WARMUP_RATE_GUESS = 5000;

/**
 * A lane: one kind of request against one server, ready to run in slices. A pool lane mints its
 * first fill for the warm-up; after the warm-up it is topped up to 3 times what the warm-up rate
 * says the measured slices will use. Given several bases (instances of one fleet), the lane splits
 * its connections evenly between them and drives them all at once from one pool, so the total
 * concurrency is the same as against one server and no token is sent twice.
 */
export async function lane(subject, base, spec) {
  const connections = spec.connections ?? opts.connections;
  const bases = Array.isArray(base) ? base : [base];
  let nextBody;
  let pool;
  if (spec.mint) {
    pool = new Pool();
    pool.add(await spec.mint(WARMUP_RATE_GUESS * opts.warmup + connections * 2));
    nextBody = () => spec.body(pool.take());
  } else if (spec.cycle) {
    const next = cycle(spec.cycle);
    nextBody = () => spec.body(next());
  }
  // per-request headers each used once (DPoP proofs: a fresh jti every time)
  let nextHeaders;
  let headerPool;
  if (spec.mintHeaders) {
    headerPool = new Pool();
    headerPool.add(await spec.mintHeaders(WARMUP_RATE_GUESS * opts.warmup + connections * 2));
    nextHeaders = () => headerPool.take();
  }
  const requests = bases.map((b, i) => ({
    url: b + spec.path,
    method: spec.method ?? 'POST',
    headers: spec.headers ?? {},
    body: spec.fixedBody,
    nextBody,
    nextHeaders,
    // 50 over 2 instances: 25 each; a remainder goes to the first ones
    connections: Math.floor(connections / bases.length) + (i < connections % bases.length ? 1 : 0),
  }));
  let probed;
  for (const request of requests) probed ??= await probe(nextHeaders ? { ...request, headers: { ...request.headers, ...nextHeaders() } } : request, nextBody ? nextBody() : spec.fixedBody, spec.expect);
  if (probed) note(`    ${subject}: probe failed: ${probed}`);
  // all instances at once; the rate is every response over the longest of the runs
  const run = async (seconds) => {
    const runs = await Promise.all(requests.map((r) => cannon({ ...r, seconds })));
    if (runs.length === 1) return runs[0];
    const merged = { responses: 0, sent: 0, seconds: 0, errors: 0, codes: {}, latencies: [] };
    for (const r of runs) {
      merged.responses += r.responses;
      merged.sent += r.sent;
      merged.seconds = Math.max(merged.seconds, r.seconds);
      merged.errors += r.errors;
      for (const [code, n] of Object.entries(r.codes)) merged.codes[code] = (merged.codes[code] ?? 0) + n;
      for (const ms of r.latencies) merged.latencies.push(ms);
    }
    merged.rps = merged.responses / merged.seconds;
    return merged;
  };
  return {
    subject,
    spec,
    connections,
    async warm() {
      const w = await run(opts.warmup);
      if (pool) {
        // the warm-up runs colder than the measurement (with --workers, much colder): 3 times what
        // its rate asks for, so a pool never runs dry (a reused token would count as an error)
        const want = Math.ceil(Math.max(w.rps, 200) * 3 * (opts.seconds + 1)) + connections * 4;
        if (pool.remaining < want) pool.add(await spec.mint(want - pool.remaining));
        pool.dry = false;
        this.firstMeasured = pool.items[pool.next];
      }
      if (headerPool) {
        const want = Math.ceil(Math.max(w.rps, 200) * 3 * (opts.seconds + 1)) + connections * 4;
        if (headerPool.remaining < want) headerPool.add(await spec.mintHeaders(want - headerPool.remaining));
        headerPool.dry = false;
      }
    },
    slice: run,
    async finish() {
      const confirmed = spec.confirm && this.firstMeasured !== undefined ? await spec.confirm(this.firstMeasured) : undefined;
      if (confirmed) note(`    ${subject}: check after the run failed: ${confirmed}`);
      const problem = probed ? `probe: ${probed}` : confirmed;
      return { poolDry: pool || headerPool ? Boolean(pool?.dry || headerPool?.dry) : undefined, ...(problem ? { problem } : {}) };
    },
  };
}
