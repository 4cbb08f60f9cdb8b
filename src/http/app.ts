// The HTTP side of Tollgate: Koa with its middleware and routes, and the request handler that
// stamps each request's arrival and answers the public documents ahead of Koa.
import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import type { Logger } from '../logger.js';
import type { ArrivalStamper } from './arrival.js';
import { type Document, documentResponder } from './documents.js';
import type { Metrics, MetricsRenderer } from './metrics.js';
import { envelope, requestLogger, securityHeaderList } from './middleware.js';
import { type RouteDeps, createRouter } from './routes.js';

export interface HttpAppOptions extends Omit<RouteDeps, 'documents' | 'metrics'> {
  logger: Logger;
  https: boolean;
  trustProxy: boolean;
  arrivals: ArrivalStamper;
  documents: ReadonlyMap<string, () => Document>;
  /** This app's own registry (also counts requests), or another renderer for GET /metrics. */
  metrics: { builtIn?: Metrics | undefined; render?: MetricsRenderer | undefined };
}

export interface HttpApp {
  koa: Koa;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const { logger, https, documents, arrivals } = options;
  const builtIn = options.metrics.builtIn;
  // Behind a trusted proxy, only the address it appended (the last X-Forwarded-For entry) is
  // believed: earlier entries come from the client and would let it dodge the per-IP throttle.
  const koa = new Koa({ proxy: options.trustProxy, maxIpsCount: 1 });
  koa.silent = true;
  koa.use(envelope({ logger, https, metrics: builtIn }));
  const router = createRouter({ ...options, documents, metrics: options.metrics.render ?? builtIn });
  koa.use(router.routes());
  koa.use(router.allowedMethods());
  return {
    koa,
    callback() {
      const handle = koa.callback();
      const answerDocument = documentResponder({ documents, securityHeaders: securityHeaderList(https), log: requestLogger(logger), metrics: builtIn });
      return (req, res) => {
        arrivals.stamp(req);
        return answerDocument(req, res) ? Promise.resolve() : handle(req, res);
      };
    },
  };
}
