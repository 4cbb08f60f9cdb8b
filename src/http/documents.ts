// The two public documents, GET (and HEAD) /.well-known/jwks.json and
// /.well-known/oauth-authorization-server, answered ahead of Koa from precomputed bytes. Every
// resource server and verifier fetches the JWKS; building a Koa context and walking the middleware
// chain and router was most of such a request's cost. The answer is the one the Koa routes give
// (the same headers, ETag handling, log line and metrics; a test compares the two). Anything else
// (another method, a query string, another spelling of the path) goes on to Koa.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { etagMatches } from './etag.js';
import type { RequestLine } from './middleware.js';
import { elapsedMs } from './middleware.js';

/** A document as the routes serve it: its body, its ETag if it has one, and its own headers. */
export interface Document {
  body: string;
  etag?: string;
  contentType: string;
  cacheControl: string;
}

export interface DocumentDeps {
  /** The documents by exact request path; any other path is left to Koa. */
  documents: ReadonlyMap<string, () => Document>;
  securityHeaders: ReadonlyArray<readonly [string, string]>;
  log(line: RequestLine): void;
  metrics?: { request(method: string, route: string, status: number, seconds: number): void } | undefined;
}

/** Whether a conditional request for the document is answered 304 (RFC 9110 §13.1.2). */
export function notModified(doc: Document, ifNoneMatch: string | undefined): boolean {
  return doc.etag !== undefined && ifNoneMatch !== undefined && etagMatches(ifNoneMatch, doc.etag);
}

interface Rendered {
  source: Document;
  ok: string[];
  notModified: string[];
}

/** Returns a handler that answers a document request and returns true, or returns false and leaves it. */
export function documentResponder(deps: DocumentDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const rendered = new Map<string, Rendered>();
  // headers and bytes are built once per version of a document (the JWKS changes on key events)
  const render = (path: string, doc: Document): Rendered => {
    const cached = rendered.get(path);
    if (cached && cached.source.body === doc.body && cached.source.etag === doc.etag) return cached;
    const common = [...deps.securityHeaders.flat(), 'Cache-Control', doc.cacheControl, ...(doc.etag === undefined ? [] : ['ETag', doc.etag])];
    const fresh = { source: doc, ok: [...common, 'Content-Type', doc.contentType, 'Content-Length', String(Buffer.byteLength(doc.body))], notModified: common };
    rendered.set(path, fresh);
    return fresh;
  };
  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const path = req.url;
    const document = path === undefined ? undefined : deps.documents.get(path);
    if (path === undefined || !document) return false;
    const start = performance.now();
    let doc: Rendered;
    try {
      doc = render(path, document());
    } catch {
      return false; // Koa's route meets the same failure and answers it as any other
    }
    const status = notModified(doc.source, req.headers['if-none-match']) ? 304 : 200;
    if (status === 304) {
      res.writeHead(304, doc.notModified).end();
    } else {
      res.writeHead(200, doc.ok);
      // a string: Node sends it in the same write as the head (a Buffer would take a writev of two)
      res.end(method === 'HEAD' ? undefined : doc.source.body);
    }
    deps.log({ method, path, status, ms: elapsedMs(start) });
    deps.metrics?.request(method, path, status, (performance.now() - start) / 1000);
    return true;
  };
}
