// createTodoApp: the to-do API from the talk. Every route that touches to-dos sits behind
// requireToken, which checks the access token (and the deny list) before the handler runs; the
// handler trusts only the verified `sub`.
import Router from '@koa/router';
import Koa from 'koa';
import { type TokenState, type Verifier, requireToken } from 'tollgate/verifier';
import { TodoStore } from './todos.js';

export interface TodoAppOptions {
  verifier: Verifier;
  /** The SQLite file of the to-dos (`:memory:` for tests). */
  dbPath: string;
  /** The API's public base URL, when behind a proxy: DPoP proofs name it in htu (RFC 9449). */
  publicUrl?: string | undefined;
}

export interface TodoApp {
  koa: Koa;
  callback(): ReturnType<Koa['callback']>;
  /** Closes the database (the verifier belongs to the caller). */
  close(): void;
}

const MAX_BODY_BYTES = 16 * 1024;
const MAX_TEXT_LENGTH = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(ctx: Koa.Context): Promise<unknown> {
  if (!ctx.is('application/json')) throw new HttpError(415, 'invalid_request', 'send the to-do as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'invalid_request', 'the body is too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_request', 'the body is not JSON');
  }
}

export function createTodoApp({ verifier, dbPath, publicUrl }: TodoAppOptions): TodoApp {
  // Bearer and DPoP-bound tokens alike (Authorization: DPoP with a DPoP proof header)
  const guard = (roles: string[]) => requireToken(verifier, { roles, ...(publicUrl ? { publicUrl } : {}) });
  const todos = new TodoStore(dbPath);
  const koa = new Koa();
  koa.silent = true;
  const router = new Router<TokenState>();

  koa.use(async (ctx, next) => {
    try {
      await next();
    } catch (e) {
      if (e instanceof HttpError) {
        ctx.status = e.status;
        ctx.body = { error: e.error, error_description: e.message };
        return;
      }
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'something went wrong' };
      process.stderr.write(`todo-api: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
  });

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/todos', guard(['RETRIEVE_TODOS']), (ctx) => {
    const { claims } = ctx.state;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { todos: todos.forUser(claims.sub) };
  });

  router.post('/todos', guard(['TODO_WRITER']), async (ctx) => {
    const { claims } = ctx.state;
    const body = await readJson(ctx);
    const text = typeof body === 'object' && body !== null ? (body as { text?: unknown }).text : undefined;
    if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_TEXT_LENGTH) {
      throw new HttpError(400, 'invalid_request', `text is a non-empty string of at most ${MAX_TEXT_LENGTH} characters`);
    }
    ctx.status = 201;
    ctx.body = todos.add(claims.sub, text.trim());
  });

  koa.use(router.routes());
  koa.use(router.allowedMethods());

  return {
    koa,
    callback: () => koa.callback(),
    close: () => todos.close(),
  };
}
