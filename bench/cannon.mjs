// Load: one autocannon run, the token pools and cycles that feed its request bodies, and the
// percentiles of the latencies it records.
import autocannon from 'autocannon';

/** Tokens a write path consumes, each once. Running dry sends the last one again (and is reported). */
export class Pool {
  constructor() {
    this.items = [];
    this.next = 0;
    this.dry = false;
  }
  add(items) {
    // a loop, not push(...items): a pool of 100k tokens would overflow the call stack as arguments
    for (const item of items) this.items.push(item);
  }
  get remaining() {
    return this.items.length - this.next;
  }
  take() {
    if (this.next < this.items.length) return this.items[this.next++];
    this.dry = true;
    return this.items[this.items.length - 1];
  }
}

/** Round-robin over a fixed set (introspection: reading a token does not use it up). */
export function cycle(items) {
  let i = 0;
  return () => items[i++ % items.length];
}

/**
 * One autocannon run. `nextBody` makes every request's body (pools, cycles); otherwise `body` is
 * sent each time. The rate is counted from responses over the time they took (autocannon's own
 * duration is rounded to its one-second ticks); `latencies` has every 2xx response's time in ms,
 * so runs in slices can be pooled into exact percentiles.
 */
export function cannon({ url, method = 'GET', headers = {}, body, nextBody, nextHeaders, connections, seconds }) {
  const opts = { url, method, headers, connections, duration: seconds, timeout: 10, pipelining: 1 };
  if (method === 'POST') opts.headers = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  if (body !== undefined) opts.body = body;
  if (nextBody || nextHeaders) {
    opts.requests = [{ setupRequest: (req) => ({ ...req, ...(nextBody ? { body: nextBody() } : {}), ...(nextHeaders ? { headers: { ...req.headers, ...nextHeaders() } } : {}) }) }];
  }
  let responses = 0;
  let last = 0;
  const latencies = [];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => {
      if (err) return reject(err);
      const elapsed = Math.max(0.001, ((last || performance.now()) - started) / 1000);
      const codes = Object.fromEntries(Object.entries(res.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
      resolve({
        rps: responses / elapsed,
        responses,
        // written, answered or not: autocannon drops its connections at the end of a run, and the
        // server still does the work of the requests then in flight
        sent: res.requests?.sent ?? responses,
        seconds: elapsed,
        p50: res.latency.p50,
        p99: res.latency.p99,
        errors: res.non2xx + res.errors,
        codes,
        socketErrors: res.errors,
        timeouts: res.timeouts,
        latencies,
      });
    });
    instance.on('response', (_client, status, _bytes, ms) => {
      responses++;
      last = performance.now();
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/** The q-quantile (0..1) of a list of numbers, nearest rank. */
export function percentile(values, q) {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] * 10) / 10;
}

