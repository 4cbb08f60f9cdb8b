// What each path is held against, and the targets of issue 19: server CPU per request against the
// limits and the peer (what an operator pays for), measured in turns; the checks a run meets or misses.

// what each path is held against: bare Koa (a POST; JWKS a GET), raw argon2, node-oidc-provider
export const VS_KOA = new Set(['refresh', 'client_credentials', 'introspect_access', 'introspect_refresh', 'deny_list', 'jwks']);
export const VS_PEER = new Set(['client_credentials', 'introspect_access', 'revoke_access', 'jwks']);
// paths with a floor lane (bench/floor.mjs: only the work the path cannot avoid), run with the limits
export const WITH_FLOOR = new Set(['client_credentials', 'refresh', 'introspect_access', 'introspect_refresh']);

/**
 * Issue 19, per path: Tollgate's server CPU per request at most `max` times the limit's (argon2's CPU
 * per verify for the password grant), at most `peerMax` times the peer's; `peerRps`: req/s at least
 * this many times the peer's. The req/s columns are kept for information.
 */
export const COST = {
  password: { max: 1.15 },
  refresh: { max: 3.5 },
  client_credentials: { max: 3, peerMax: 0.5 },
  introspect_access: { max: 2, peerMax: 0.4 },
  introspect_refresh: { max: 2.5 },
  deny_list: { max: 1.5 },
  jwks: { max: 1 },
  revoke_access: { peerRps: 1 },
};

export const TARGETS = {
  p99Ms: 20,
  // the single server process over the whole run (VmHWM)
  rssMb: 150,
  // --workers 2: server CPU per request (the whole process tree) at most this times --workers 1's
  workersCpu: 1.1,
  // the verifier library, per core: verify() with the deny list against jose's jwtVerify alone
  verifierVsJose: 0.9,
  verifierCacheVsJose: 5,
  // issue 17: a request with a DPoP proof costs at most this much server CPU of one without
  dpopCpu: 1.5,
};

export const rowOf = (section, key) => section?.rows.find((r) => r.key === key || r.pairedWith === key);

/** The limit a path is held against (measured in turns with it): its rate and CPU per request, and the target. */
export function limitOf(results, key) {
  const max = COST[key]?.max;
  if (key === 'password') {
    const a = rowOf(results.argon2, key);
    return a && { name: 'argon2', rps: a.rps, cpuUs: a.serverCpuUsPerRequest, max };
  }
  if (!VS_KOA.has(key)) return undefined;
  const k = rowOf(results.koa, key);
  return k && { name: key === 'jwks' ? 'koa GET' : 'koa POST', rps: k.rps, cpuUs: k.serverCpuUsPerRequest, max };
}

/** A path's floor (information, not a target): its CPU per request, and over the bare Koa limit's. */
export function floorOf(results, key) {
  const f = WITH_FLOOR.has(key) ? rowOf(results.floor, key) : undefined;
  const k = f && rowOf(results.koa, key);
  return f && { row: f, cpuUs: f.serverCpuUsPerRequest, vsKoa: cpuRatio(f, k) };
}

export const peerOf = (results, key) => (VS_PEER.has(key) ? rowOf(results.peer, key) : undefined);

/** Tollgate's CPU per request over another's, when both were measured. */
export const cpuRatio = (row, other) => (row?.serverCpuUsPerRequest && other?.serverCpuUsPerRequest ? row.serverCpuUsPerRequest / other.serverCpuUsPerRequest : undefined);

/** No error responses, every request with a fresh token, and the probes and checks passed. */
export const clean = (row) => row.errors === 0 && !row.poolDry && !row.problem;
const errorText = (row) => `${row.errors}${row.poolDry ? ', the pool ran dry' : ''}${row.problem ? `, ${row.problem}` : ''}`;
const times = (x) => `${x.toFixed(2)}×`;

export function checks(results) {
  const out = [];
  // goal: the target as the report prints it ('≤ 3.5×', '≥ 1×', '≤ 20 ms')
  const add = (what, value, target, pass, shown, goal) => out.push({ what, value, target, pass, shown, goal });
  const atMost = (what, value, target, unit = '×', shown = unit === '×' ? times(value) : `${value} ${unit}`) => value !== undefined && add(what, value, target, value <= target, shown, `≤ ${target}${unit === '×' ? '×' : ` ${unit}`}`);
  const atLeast = (what, value, target) => value !== undefined && add(what, value, target, value >= target, times(value), `≥ ${target}×`);
  for (const row of results.tollgate?.rows ?? []) {
    add(`${row.label}: errors`, row.errors, 0, clean(row), errorText(row), '0');
    const cost = COST[row.key] ?? {};
    const limit = limitOf(results, row.key);
    if (limit && cost.max !== undefined) {
      const r = limit.cpuUs && row.serverCpuUsPerRequest ? row.serverCpuUsPerRequest / limit.cpuUs : undefined;
      if (r === undefined) add(`${row.label}: CPU/req × ${limit.name}`, undefined, cost.max, false, 'not measured', `≤ ${cost.max}×`);
      else atMost(`${row.label}: CPU/req × ${limit.name}`, r, cost.max);
      // information only: how much of the target the path's floor already takes
      const floor = floorOf(results, row.key)?.vsKoa;
      if (floor !== undefined) out.at(-1).note = `floor ${times(floor)} ${limit.name}, ${floor <= cost.max ? `leaving ${times(cost.max - floor)} for the rest` : `over the target by ${times(floor - cost.max)} before any of Tollgate's own code`}`;
    }
    const peer = peerOf(results, row.key);
    if (peer && cost.peerMax !== undefined) atMost(`${row.label}: CPU/req × node-oidc-provider`, cpuRatio(row, peer), cost.peerMax);
    if (peer && cost.peerRps !== undefined) atLeast(`${row.label}: req/s × node-oidc-provider`, row.rps / peer.rps, cost.peerRps);
    if (row.key !== 'password') atMost(`${row.label}: p99`, row.p99, TARGETS.p99Ms, 'ms');
  }
  // a comparison only counts when the other side did the work too
  for (const row of [...(results.peer?.rows ?? []), ...(results.koa?.rows ?? [])]) add(`${row.subject} ${row.label} (with ${row.pairedWith}): errors`, row.errors, 0, clean(row), errorText(row), '0');
  if (results.tollgate) atMost('peak RSS of the server', Math.round(results.tollgate.peakRssMb), TARGETS.rssMb, 'MB');
  const w = results.workers;
  if (w?.[1] && w?.[2]) {
    for (const one of w[1].rows) {
      const two = rowOf(w[2], one.key);
      const r = cpuRatio(two, one);
      if (r === undefined) add(`--workers 2 / --workers 1, ${one.label}: CPU/req`, undefined, TARGETS.workersCpu, false, 'not measured', `≤ ${TARGETS.workersCpu}×`);
      else atMost(`--workers 2 / --workers 1, ${one.label}: CPU/req`, r, TARGETS.workersCpu);
      add(`--workers 1, ${one.label}: errors`, one.errors, 0, clean(one), errorText(one), '0');
      add(`--workers 2, ${two.label}: errors`, two.errors, 0, clean(two), errorText(two), '0');
    }
  }
  const v = results.verifier;
  if (v?.rows) {
    const jose = v.rows.find((r) => r.key === 'jose');
    for (const [key, target] of [['verifier', TARGETS.verifierVsJose], ['verifier_cache', TARGETS.verifierCacheVsJose]]) {
      const row = v.rows.find((r) => r.key === key);
      if (row && jose) atLeast(`verifier: ${row.label}, per-core rate × jose jwtVerify`, row.perCoreRate / jose.perCoreRate, target);
    }
    if (v.problem) add('verifier: checks', undefined, 0, false, v.problem, 'none failed');
  }
  const d = results.dpop?.rows;
  if (d?.length === 2 && d[0].serverCpuUsPerRequest && d[1].serverCpuUsPerRequest) {
    atMost('DPoP: server CPU per request, with / without a proof', d[1].serverCpuUsPerRequest / d[0].serverCpuUsPerRequest, TARGETS.dpopCpu);
    for (const row of d) add(`DPoP section, ${row.label}: errors`, row.errors, 0, clean(row), errorText(row), '0');
  }
  // PostgreSQL: no throughput target (issue 9 asks for the figures); every request must succeed
  const p = results.postgres;
  for (const [n, section] of [[1, p?.[1]], [2, p?.[2]]]) {
    for (const row of section?.rows ?? []) add(`PostgreSQL, ${n} instance${n === 1 ? '' : 's'}, ${row.label}: errors`, row.errors, 0, clean(row), errorText(row), '0');
  }
  return out;
}

export const pct = (x) => `${Math.round(x * 100)}%`;
export const mark = (pass) => (pass ? '✓' : '✗');
