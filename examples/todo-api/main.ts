// `npm run example:todo`: the to-do API on TODO_API_HOST:TODO_API_PORT, trusting TOLLGATE_ISSUER
// and following its deny list over SSE with its own confidential client.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVerifier } from 'tollgate/verifier';
import { createTodoApp } from './app.js';

function fail(message: string, status = 2): never {
  process.stderr.write(`todo-api: ${message}\n`);
  process.exit(status);
}

const env = process.env;
const host = env.TODO_API_HOST || '127.0.0.1';
const portText = env.TODO_API_PORT || '4000';
if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) fail(`TODO_API_PORT must be a port number, not ${JSON.stringify(portText)}`);
const issuer = (env.TOLLGATE_ISSUER || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const audience = env.TODO_API_AUDIENCE || 'todo-api';
const dbPath = env.TODO_API_DATABASE || 'examples/todo-api/data/todos.db';
const clientId = env.TODO_API_CLIENT_ID || 'todo-api';
const clientSecret = env.TODO_API_CLIENT_SECRET;
// behind a proxy: the URL clients call, which their DPoP proofs name (htu)
const publicUrl = env.TODO_API_PUBLIC_URL || undefined;
if (publicUrl !== undefined && !URL.canParse(publicUrl)) fail('TODO_API_PUBLIC_URL must be an absolute URL');
if (!clientSecret) fail('TODO_API_CLIENT_SECRET is required: the secret of the confidential client that reads the deny-list feed');

let verifier;
try {
  verifier = createVerifier({
    issuer,
    audience,
    denyList: { url: `${issuer}/deny-list`, clientId, clientSecret, mode: 'stream' },
  });
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
try {
  await verifier.ready();
} catch (e) {
  verifier.close();
  fail(`cannot reach Tollgate at ${issuer}: ${e instanceof Error ? e.message : String(e)}`, 1);
}

const app = createTodoApp({ verifier, dbPath, publicUrl });
const server = http.createServer(app.callback());
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(portText), host, () => resolve());
}).catch((e: unknown) => {
  verifier.close();
  fail(`cannot listen on ${host}:${portText}: ${e instanceof Error ? e.message : String(e)}`, 1);
});
const { port } = server.address() as AddressInfo;
process.stdout.write(`todo-api listening on http://${host}:${port} (issuer ${issuer}, audience ${audience})\n`);

const stop = () => {
  verifier.close();
  server.closeIdleConnections();
  server.close(() => {
    app.close();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
