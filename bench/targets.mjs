// What each path is held against, and the targets of issue 6: the checks that a run meets or misses.

// what each path is held against (issue 6)
export const VS_KOA = new Set(['refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'jwks']);
export const VS_PEER = new Set(['client_credentials', 'introspect_access', 'revoke_access', 'jwks']);

export const TARGETS = {
  passwordVsArgon2: 0.9,
  vsKoa: 0.3,
  jwksVsKoa: 0.8,
  vsPeer: 2,
  p99Ms: 20,
  rssMb: 200,
  workerScaling: 1.6,
  // issue 17: a request with a DPoP proof costs at most this much server CPU of one without
  dpopCpu: 1.5,
};

export const rowOf = (section, key) => section?.rows.find((r) => r.key === key || r.pairedWith === key);

/** The limit a path is held against (measured in turns with it), and the target share. */
export function limitOf(results, key) {
  if (key === 'password') {
    const a = rowOf(results.argon2, key);
    return a && { name: 'argon2', rps: a.rps, target: TARGETS.passwordVsArgon2 };
  }
  if (!VS_KOA.has(key)) return undefined;
  const k = rowOf(results.koa, key);
  return k && { name: 'koa', rps: k.rps, target: key === 'jwks' ? TARGETS.jwksVsKoa : TARGETS.vsKoa };
}

export const peerOf = (results, key) => (VS_PEER.has(key) ? rowOf(results.peer, key) : undefined);

/** No error responses, every request with a fresh token, and the probes and checks passed. */
export const clean = (row) => row.errors === 0 && !row.poolDry && !row.problem;
const errorText = (row) => `${row.errors}${row.poolDry ? ', the pool ran dry' : ''}${row.problem ? `, ${row.problem}` : ''}`;

export function checks(results) {
  const out = [];
  const add = (what, value, target, pass, shown) => out.push({ what, value, target, pass, shown });
  for (const row of results.tollgate?.rows ?? []) {
    add(`${row.label}: errors`, row.errors, 0, clean(row), errorText(row));
    const limit = limitOf(results, row.key);
    if (limit) add(`${row.label}: share of ${limit.name}`, row.rps / limit.rps, limit.target, row.rps / limit.rps >= limit.target, pct(row.rps / limit.rps));
    const peer = peerOf(results, row.key);
    if (peer) add(`${row.label}: × node-oidc-provider`, row.rps / peer.rps, TARGETS.vsPeer, row.rps / peer.rps >= TARGETS.vsPeer, `${(row.rps / peer.rps).toFixed(2)}×`);
    if (row.key !== 'password') add(`${row.label}: p99 ms`, row.p99, TARGETS.p99Ms, row.p99 <= TARGETS.p99Ms, `${row.p99} ms`);
  }
  // a comparison only counts when the other side did the work too
  for (const row of [...(results.peer?.rows ?? []), ...(results.koa?.rows ?? [])]) add(`${row.subject} ${row.label} (with ${row.pairedWith}): errors`, row.errors, 0, clean(row), errorText(row));
  if (results.tollgate) add('peak RSS of the server, MB', results.tollgate.peakRssMb, TARGETS.rssMb, results.tollgate.peakRssMb <= TARGETS.rssMb, `${results.tollgate.peakRssMb.toFixed(0)} MB`);
  const w = results.workers;
  if (w?.[1] && w?.[2]) {
    for (const one of w[1].rows) {
      const two = rowOf(w[2], one.key);
      add(`--workers 2 / --workers 1, ${one.label}`, two.rps / one.rps, TARGETS.workerScaling, two.rps / one.rps >= TARGETS.workerScaling, `${(two.rps / one.rps).toFixed(2)}×`);
      add(`--workers 1, ${one.label}: errors`, one.errors, 0, clean(one), errorText(one));
      add(`--workers 2, ${two.label}: errors`, two.errors, 0, clean(two), errorText(two));
    }
  }
  const d = results.dpop?.rows;
  if (d?.length === 2 && d[0].serverCpuUsPerRequest && d[1].serverCpuUsPerRequest) {
    const ratio = d[1].serverCpuUsPerRequest / d[0].serverCpuUsPerRequest;
    add('DPoP: server CPU per request, with / without a proof', ratio, TARGETS.dpopCpu, ratio <= TARGETS.dpopCpu, `${ratio.toFixed(2)}×`);
    for (const row of d) add(`DPoP section, ${row.label}: errors`, row.errors, 0, clean(row), errorText(row));
  }
  // PostgreSQL: no throughput target (issue 9 asks for the figures); every request must succeed
  const p = results.postgres;
  for (const [n, section] of [[1, p?.[1]], [2, p?.[2]]]) {
    for (const row of section?.rows ?? []) add(`PostgreSQL, ${n} instance${n === 1 ? '' : 's'}, ${row.label}: errors`, row.errors, 0, clean(row), errorText(row));
  }
  return out;
}

export const pct = (x) => `${Math.round(x * 100)}%`;
export const mark = (pass) => (pass ? '✓' : '✗');
