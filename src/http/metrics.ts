// GET /metrics: Prometheus text format via prom-client, one Registry per app (tests build many
// apps in one process; the global registry would mix them and refuse duplicate names).
// Labels are bounded, known sets only (the router's path, never the raw URL; the grant type, the
// token type): no token, username, client id or secret ever becomes a label.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SseHub } from './sse.js';
import type { DenyList } from '../denylist/denyList.js';
import type { Keyring } from '../keys/keyring.js';
import type { ProtocolEvents } from '../oauth/events.js';
import { GRANT_TYPES } from '../oauth/grants/grant.js';
import { REFUSAL_REASONS } from '../dpop/proof.js';
import type { PasswordHasher } from '../users/passwords.js';

/** What the gauges read at scrape time. */
export interface Observed {
  denyList: Pick<DenyList, 'size'>;
  hasher: Pick<PasswordHasher, 'queueDepth' | 'active' | 'waitedMs'>;
  keyring: Pick<Keyring, 'hasActiveKey'>;
}

const GRANTS: ReadonlySet<string> = new Set(GRANT_TYPES);

/** What GET /metrics serves: Prometheus text and its content type. */
export interface MetricsRenderer {
  contentType: string;
  render(): Promise<string>;
}
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What the router's /metrics route needs. */
export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

export class Metrics implements MetricsEndpoint {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'method' | 'route' | 'status'>;
  private readonly issued: Counter<'grant'>;
  private readonly reuse: Counter;
  private readonly retries: Counter;
  private readonly revocations: Counter<'token_type'>;
  private readonly dpopRefusals: Counter<'reason'>;
  private observed: { services: Observed; hub: SseHub } | undefined;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'tollgate_http_requests_total', help: 'HTTP requests by route (the router path) and status', labelNames: ['method', 'route', 'status'], registers });
    this.latency = new Histogram({
      name: 'tollgate_http_request_duration_seconds',
      help: 'HTTP request latency by route and status (to the response headers; an SSE stream counts until it opens)',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.issued = new Counter({ name: 'tollgate_tokens_issued_total', help: 'access tokens issued, by grant type', labelNames: ['grant'], registers });
    this.reuse = new Counter({ name: 'tollgate_refresh_reuse_detected_total', help: 'spent refresh tokens presented again (the family was revoked)', registers });
    this.retries = new Counter({ name: 'tollgate_refresh_retries_total', help: 'refresh requests answered with the same successor within the retry grace', registers });
    this.dpopRefusals = new Counter({ name: 'tollgate_dpop_proofs_refused_total', help: 'DPoP proofs refused at the token endpoint, by the check that failed', labelNames: ['reason'], registers });
    this.revocations = new Counter({ name: 'tollgate_revocations_total', help: 'tokens revoked at POST /revoke, by token type', labelNames: ['token_type'], registers });
    for (const grant of GRANTS) this.issued.inc({ grant }, 0);
    for (const tokenType of ['access_token', 'refresh_token']) this.revocations.inc({ token_type: tokenType }, 0);

    // read at scrape time from the app's services (see observe())
    const observed = () => this.observed;
    new Gauge({
      name: 'tollgate_deny_list_entries',
      help: 'deny-list entries held in memory (jti, sid and sub)',
      registers,
      collect() {
        this.set(observed()?.services.denyList.size ?? 0);
      },
    });
    new Gauge({
      name: 'tollgate_sse_subscribers',
      help: 'open GET /deny-list/events streams',
      registers,
      collect() {
        this.set(observed()?.hub.streams.size ?? 0);
      },
    });
    // the hub keeps running totals; a counter only goes up by what accrued since the last scrape
    const reported = { client: 0, server: 0, revoked: 0 };
    new Counter({
      name: 'tollgate_sse_refused_total',
      help: 'GET /deny-list/events refused with 429, by the cap that refused it (per client or for the server)',
      labelNames: ['limit'],
      registers,
      collect() {
        const refused = observed()?.hub.refused;
        for (const limit of ['client', 'server'] as const) {
          const total = refused?.[limit] ?? 0;
          this.inc({ limit }, Math.max(0, total - reported[limit]));
          reported[limit] = Math.max(total, reported[limit]);
        }
      },
    });
    new Counter({
      name: 'tollgate_sse_revoked_total',
      help: 'SSE streams ended because their client was removed or its secret rotated',
      registers,
      collect() {
        const total = observed()?.hub.revoked ?? 0;
        this.inc(Math.max(0, total - reported.revoked));
        reported.revoked = Math.max(total, reported.revoked);
      },
    });
    new Gauge({
      name: 'tollgate_password_hash_queue_depth',
      help: 'password hashes waiting for an argon2 slot',
      registers,
      collect() {
        this.set(observed()?.services.hasher.queueDepth ?? 0);
      },
    });
    new Gauge({
      name: 'tollgate_password_hash_active',
      help: 'argon2 hashes running now',
      registers,
      collect() {
        this.set(observed()?.services.hasher.active ?? 0);
      },
    });
    let reportedWait = 0;
    new Counter({
      name: 'tollgate_password_hash_wait_seconds_total',
      help: 'total time password hashes waited in the queue for an argon2 slot',
      registers,
      collect() {
        // the hasher keeps the running total; a counter only goes up by what accrued since the last scrape
        const waited = (observed()?.services.hasher.waitedMs ?? 0) / 1000;
        if (waited > reportedWait) {
          this.inc(waited - reportedWait);
          reportedWait = waited;
        }
      },
    });
    new Gauge({
      name: 'tollgate_signing_key_loaded',
      help: '1 when an active signing key is loaded',
      registers,
      collect() {
        this.set(observed()?.services.keyring.hasActiveKey() ? 1 : 0);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The counters the protocol layer reports (pass to createServices). */
  readonly events: ProtocolEvents = {
    tokenIssued: (grant) => this.issued.inc({ grant: GRANTS.has(grant) ? grant : 'other' }),
    refreshReuse: () => this.reuse.inc(),
    refreshRetry: () => this.retries.inc(),
    revoked: (kind) => this.revocations.inc({ token_type: kind }),
    dpopRefused: (reason) => this.dpopRefusals.inc({ reason: (REFUSAL_REASONS as readonly string[]).includes(reason) ? reason : 'other' }),
  };

  /** Lets the gauges read the app's state at scrape time. */
  observe(services: Observed, hub: SseHub): void {
    this.observed = { services, hub };
  }

  /**
   * Counts a request Koa answered, by the route that matched (`matched`: the router's path
   * template, never the raw URL, which is unbounded and may carry secrets), after the error
   * handling settled its status (http/middleware.ts envelope).
   */
  koaRequest(method: string, matched: unknown, status: number, seconds: number): void {
    this.request(METHODS.has(method) ? method : 'other', typeof matched === 'string' ? matched : 'unmatched', status, seconds);
  }

  /** Counts one request: `route` is a path template or 'unmatched', never a raw URL. */
  request(method: string, route: string, status: number, seconds: number): void {
    const series = this.series(method, route, status);
    series.requests.inc();
    series.latency.observe(seconds);
  }

  // prom-client hashes a labels object on every inc/observe (sorting its keys): the children for a
  // method, route and status are looked up once and kept (bounded: known methods, the router's
  // routes and 'unmatched', HTTP status codes)
  private readonly children = new Map<string, { requests: Counter.Internal; latency: Histogram.Internal<'method' | 'route' | 'status'> }>();
  private series(method: string, route: string, status: number) {
    const key = `${method} ${status} ${route}`;
    let series = this.children.get(key);
    if (!series) {
      const labels = { method, route, status: String(status) };
      series = { requests: this.requests.labels(labels), latency: this.latency.labels(labels) };
      this.children.set(key, series);
    }
    return series;
  }
}
