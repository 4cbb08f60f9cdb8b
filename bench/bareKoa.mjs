// The "bare Koa" limit: what one Node process running Koa 3 can answer on this machine when each
// request does the least a token endpoint must do: read a small form body, parse it, answer JSON.
// A GET (the "bare Koa GET" JWKS is held against) answers a small JSON object and reads nothing.
// No router, no middleware, no store. Prints {"port"} on stdout once it listens; SIGTERM stops it.
import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use(async (ctx) => {
  if (ctx.method === 'GET') {
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = { ok: true, path: ctx.path };
    return;
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return;
  }
  let raw = '';
  ctx.req.setEncoding('utf8');
  for await (const chunk of ctx.req) raw += chunk;
  const params = new URLSearchParams(raw);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { ok: true, grant_type: params.get('grant_type'), fields: [...params.keys()].length };
});

const server = http.createServer(app.callback());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
process.once('SIGINT', () => server.close(() => process.exit(0)));
