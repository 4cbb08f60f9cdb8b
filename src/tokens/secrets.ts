// Opaque secrets (refresh tokens, client secrets): a recognisable prefix so secret scanners can
// find leaked ones, 256 bits of randomness, and a CRC-32 checksum so a mistyped or forged string
// is rejected before any database lookup. Only SHA-256 hashes are stored.
import crypto from 'node:crypto';
import zlib from 'node:zlib';

export const REFRESH_TOKEN_PREFIX = 'tgr_';
export const CLIENT_SECRET_PREFIX = 'tgs_';

const BODY_LENGTH = 43; // 32 bytes, base64url
const CHECKSUM_LENGTH = 6; // 4 bytes, base64url

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The base64url of a CRC-32's 4 big-endian bytes (6 characters, no padding), without a Buffer. */
function crc32Text(crc: number): string {
  return BASE64URL.charAt(crc >>> 26) + BASE64URL.charAt((crc >>> 20) & 63) + BASE64URL.charAt((crc >>> 14) & 63) + BASE64URL.charAt((crc >>> 8) & 63) + BASE64URL.charAt((crc >>> 2) & 63) + BASE64URL.charAt((crc & 3) << 4);
}

function checksum(prefix: string, body: string): string {
  return crc32Text(zlib.crc32(prefix + body));
}

/** A secret from 32 bytes: random for a new one, or derived (an HMAC) for a deterministic successor. */
export function formatSecret(prefix: string, bytes: Buffer): string {
  const body = bytes.toString('base64url');
  return `${prefix}${body}${checksum(prefix, body)}`;
}

export function mintSecret(prefix: string): string {
  return formatSecret(prefix, crypto.randomBytes(32));
}

// the prefixes are base64url characters too, so the whole value is checked in one pass
const SHAPE = /^[A-Za-z0-9_-]+$/;

/** True when the string has the prefix, the length and a matching checksum. */
export function isWellFormedSecret(prefix: string, value: string): boolean {
  if (value.length !== prefix.length + BODY_LENGTH + CHECKSUM_LENGTH || !value.startsWith(prefix) || !SHAPE.test(value)) return false;
  const signed = prefix.length + BODY_LENGTH;
  // a plain comparison: the checksum is the CRC of the body the caller sent, which the caller can
  // compute as well as we can, so its timing tells nothing about any secret we hold
  return value.endsWith(crc32Text(zlib.crc32(value.slice(0, signed))));
}

export function sha256Hex(value: string): string {
  return crypto.hash('sha256', value, 'hex');
}

/** SHA-256 as bytes (to compare with a stored hex digest decoded once, see digestBytes). */
export function sha256(value: string): Buffer {
  return crypto.hash('sha256', value, 'buffer');
}

/** A stored hex digest as bytes, or undefined when it is not a SHA-256 digest. */
export function digestBytes(hex: string): Buffer | undefined {
  const bytes = Buffer.from(hex, 'hex');
  return bytes.length === 32 ? bytes : undefined;
}
