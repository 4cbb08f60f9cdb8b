// Opaque secrets (refresh tokens, client secrets): a recognisable prefix so secret scanners can
// find leaked ones, 256 bits of randomness, and a CRC-32 checksum so a mistyped or forged string
// is rejected before any database lookup. Only SHA-256 hashes are stored.
import crypto from 'node:crypto';
import zlib from 'node:zlib';

export const REFRESH_TOKEN_PREFIX = 'tgr_';
export const CLIENT_SECRET_PREFIX = 'tgs_';

const BODY_LENGTH = 43; // 32 bytes, base64url
const CHECKSUM_LENGTH = 6; // 4 bytes, base64url

function checksum(prefix: string, body: string): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(zlib.crc32(prefix + body));
  return buf.toString('base64url');
}

/** A secret from 32 bytes: random for a new one, or derived (an HMAC) for a deterministic successor. */
export function formatSecret(prefix: string, bytes: Buffer): string {
  const body = bytes.toString('base64url');
  return `${prefix}${body}${checksum(prefix, body)}`;
}

export function mintSecret(prefix: string): string {
  return formatSecret(prefix, crypto.randomBytes(32));
}

const SHAPE = /^[A-Za-z0-9_-]+$/;

/** True when the string has the prefix, the length and a matching checksum. */
export function isWellFormedSecret(prefix: string, value: string): boolean {
  if (value.length !== prefix.length + BODY_LENGTH + CHECKSUM_LENGTH || !value.startsWith(prefix)) return false;
  const rest = value.slice(prefix.length);
  if (!SHAPE.test(rest)) return false;
  const body = rest.slice(0, BODY_LENGTH);
  const sum = rest.slice(BODY_LENGTH);
  return crypto.timingSafeEqual(Buffer.from(sum), Buffer.from(checksum(prefix, body)));
}

export function sha256Hex(value: string): string {
  return crypto.createHash('sha256').update(value).digest('hex');
}

/** Constant-time equality of two hex digests. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && crypto.timingSafeEqual(x, y);
}
