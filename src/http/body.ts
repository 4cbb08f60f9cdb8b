// Strict application/x-www-form-urlencoded bodies (RFC 6749 §3.2, §4.3.2): anything else, a
// duplicated parameter, too many parameters or an oversized body is refused before any work.
import type { Context } from 'koa';
import { InvalidRequest, PayloadTooLarge } from '../oauth/errors.js';

export interface BodyLimits {
  bodyLimitBytes: number;
  maxParameters: number;
}

export async function readForm(ctx: Context, limits: BodyLimits): Promise<Map<string, string>> {
  const type = (ctx.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limits.bodyLimitBytes) throw new PayloadTooLarge(`the body is larger than ${limits.bodyLimitBytes} bytes`);
  const text = await readLimited(ctx, limits.bodyLimitBytes);
  const params = new Map<string, string>();
  let count = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    if (++count > limits.maxParameters) throw new InvalidRequest('too many parameters');
    if (params.has(name)) throw new InvalidRequest(`the ${name} parameter is repeated`);
    params.set(name, value);
  }
  return params;
}

function readLimited(ctx: Context, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const req = ctx.req;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume(); // drain the rest so the 413 can be sent
        reject(new PayloadTooLarge(`the body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = () => {
      cleanup();
      reject(new InvalidRequest('the request body could not be read'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
