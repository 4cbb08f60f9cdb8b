// The Status List encoding (draft-ietf-oauth-status-list §4): `bits` bits per status, the status of
// index i in byte floor(i * bits / 8), counted from the least significant bit; the byte array
// compressed with DEFLATE in the ZLIB format (RFC 1950/1951, highest level, as the draft
// recommends) and base64url-encoded without padding (RFC 7515 §2) as `lst`.
import zlib from 'node:zlib';

export type BitsPerStatus = 1 | 2 | 4 | 8;

/** Status values (§7.1): VALID 0x00, INVALID 0x01. */
export const VALID = 0;
export const INVALID = 1;

/** A status array of `size` statuses, all VALID. */
export function emptyStatuses(size: number, bits: BitsPerStatus = 1): Uint8Array {
  return new Uint8Array(Math.ceil((size * bits) / 8));
}

export function setStatus(bytes: Uint8Array, index: number, value: number, bits: BitsPerStatus = 1): void {
  const per = 8 / bits;
  const byte = Math.floor(index / per);
  if (!Number.isInteger(index) || index < 0 || byte >= bytes.length) throw new RangeError(`index ${index} is outside the list`);
  const shift = (index % per) * bits;
  const mask = ((1 << bits) - 1) << shift;
  bytes[byte] = ((bytes[byte] ?? 0) & ~mask) | ((value << shift) & mask);
}

export function getStatus(bytes: Uint8Array, index: number, bits: BitsPerStatus = 1): number {
  const per = 8 / bits;
  const byte = Math.floor(index / per);
  if (!Number.isInteger(index) || index < 0 || byte >= bytes.length) throw new RangeError(`index ${index} is outside the list`);
  return ((bytes[byte] ?? 0) >> ((index % per) * bits)) & ((1 << bits) - 1);
}

/** `lst`: base64url(ZLIB(DEFLATE(bytes))). */
export function encodeStatuses(bytes: Uint8Array): string {
  return zlib.deflateSync(bytes, { level: zlib.constants.Z_BEST_COMPRESSION }).toString('base64url');
}

/**
 * The byte array of an `lst`. `maxBytes` bounds the inflated size: a list is attacker-reachable
 * input for a verifier, and a few KiB of DEFLATE can inflate to gigabytes.
 */
export function decodeStatuses(lst: string, maxBytes = 16 * 1024 * 1024): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(lst)) throw new TypeError('lst is not base64url');
  return new Uint8Array(zlib.inflateSync(Buffer.from(lst, 'base64url'), { maxOutputLength: maxBytes }));
}
