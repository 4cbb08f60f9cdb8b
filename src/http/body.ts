// Strict application/x-www-form-urlencoded bodies (RFC 6749 §3.2, §4.3.2): anything else, a
// duplicated parameter, too many parameters, malformed percent-encoding, bytes that are not UTF-8
// or an oversized body is refused before any work. Parameters sent without a value are omitted.
import type { Context } from 'koa';
import { InvalidRequest } from '../oauth/errors.js';
import { PayloadTooLarge } from './errors.js';

export interface BodyLimits {
  bodyLimitBytes: number;
  maxParameters: number;
}

export async function readForm(ctx: Context, limits: BodyLimits): Promise<Map<string, string>> {
  const type = (ctx.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new InvalidRequest('the body must be application/x-www-form-urlencoded');
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limits.bodyLimitBytes) throw new PayloadTooLarge(`the body is larger than ${limits.bodyLimitBytes} bytes`);
  return parseForm(await readLimited(ctx, limits.bodyLimitBytes), limits.maxParameters);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The WHATWG urlencoded parser, minus its leniency: URLSearchParams keeps a malformed escape
 * (`%ZZ`, `%E0%A4%A`) as literal text and turns bytes that are not UTF-8 into U+FFFD, so a
 * half-decoded value would reach the grant (a password that is not what was typed counts as a
 * failed sign-in; a scope fails as invalid_scope). Here both are 400 invalid_request.
 */
export function parseForm(body: Buffer, maxParameters: number): Map<string, string> {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new InvalidRequest('the body is not UTF-8');
  }
  const params = new Map<string, string>();
  const seen = new Set<string>();
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    if (seen.size >= maxParameters) throw new InvalidRequest('too many parameters');
    const eq = pair.indexOf('=');
    const name = formDecode(eq === -1 ? pair : pair.slice(0, eq));
    const value = formDecode(eq === -1 ? '' : pair.slice(eq + 1));
    // RFC 6749 §3.2: at most once, even when one copy is empty (two readers could pick differently)
    if (seen.has(name)) throw new InvalidRequest(`the ${name} parameter is repeated`);
    seen.add(name);
    // RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted"
    // (`client_secret=` from a public client, `scope=`)
    if (value !== '') params.set(name, value);
  }
  return params;
}

/**
 * One name or value of application/x-www-form-urlencoded ('+' a space, percent-escapes decoded,
 * RFC 6749 §2.3.1 for Basic credentials too), or undefined for a malformed escape or escapes that
 * are not UTF-8 (decodeURIComponent throws on both).
 */
export function decodeFormComponent(s: string): string | undefined {
  // most names and many values need no decoding: skip the copy and the decoder
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

function formDecode(s: string): string {
  const decoded = decodeFormComponent(s);
  if (decoded === undefined) throw new InvalidRequest('the body has malformed percent-encoding (or percent-encoded bytes that are not UTF-8)');
  return decoded;
}

function readLimited(ctx: Context, limit: number): Promise<Buffer> {
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
      resolve(Buffer.concat(chunks));
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
