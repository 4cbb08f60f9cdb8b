// The draft's own examples and test vectors (draft-ietf-oauth-status-list §4.1 and the test
// vectors appendix) through Tollgate's encoder and decoder, and through an outside implementation.
import { StatusList } from '@sd-jwt/jwt-status-list';
import { describe, expect, it } from 'vitest';
import { decodeStatuses, emptyStatuses, encodeStatuses, getStatus, setStatus } from '../../src/statuslist/encoding.js';

// §4.1: 16 statuses of 1 bit, bytes [0xB9, 0xA3]
const SMALL_SET = [0, 3, 4, 5, 7, 8, 9, 13, 15];
const SMALL_LST = 'eNrbuRgAAhcBXQ';

// Test vectors appendix, 1-bit list of 2^20 statuses
const LONG_SIZE = 2 ** 20;
const LONG_SET = [0, 1993, 25460, 159495, 495669, 554353, 645645, 723232, 854545, 934534, 1000345];
const LONG_LST =
  'eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAAACAZC8L2AEb';

function setIndices(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length * 8; i++) if (getStatus(bytes, i) === 1) out.push(i);
  return out;
}

describe('Status List encoding (draft-ietf-oauth-status-list §4)', () => {
  it('encodes the §4.1 example to exactly the draft’s bytes and lst', () => {
    const bytes = emptyStatuses(16);
    for (const i of SMALL_SET) setStatus(bytes, i, 1);
    expect([...bytes]).toEqual([0xb9, 0xa3]);
    expect(encodeStatuses(bytes)).toBe(SMALL_LST);
  });

  it('decodes the §4.1 example lst', () => {
    expect(setIndices(decodeStatuses(SMALL_LST))).toEqual(SMALL_SET);
  });

  it('decodes the 1-bit test vector of 2^20 statuses and re-encodes it to an lst that decodes to the same bits', () => {
    const decoded = decodeStatuses(LONG_LST);
    expect(decoded.length * 8).toBe(LONG_SIZE);
    expect(setIndices(decoded)).toEqual(LONG_SET);
    const bytes = emptyStatuses(LONG_SIZE);
    for (const i of LONG_SET) setStatus(bytes, i, 1);
    const lst = encodeStatuses(bytes);
    // DEFLATE output is not canonical (the vector's compressor matched its long runs differently):
    // what must agree is what decodes from it
    expect(setIndices(decodeStatuses(lst))).toEqual(LONG_SET);
    expect(decodeStatuses(lst)).toEqual(decoded);
  });

  it('encodes what an outside decoder (@sd-jwt/jwt-status-list) reads back bit for bit', () => {
    const bytes = emptyStatuses(LONG_SIZE);
    for (const i of LONG_SET) setStatus(bytes, i, 1);
    const list = StatusList.decompressStatusList(encodeStatuses(bytes), 1);
    for (const i of LONG_SET) expect(list.getStatus(i)).toBe(1);
    for (const i of [1, 1992, 1994, 25461, LONG_SIZE - 1]) expect(list.getStatus(i)).toBe(0);
  });

  it('handles 2 bits per status (the draft’s 2-bit example)', () => {
    // status[0]=1 [1]=2 [2]=0 [3]=3 [4]=0 [5]=1 [6]=0 [7]=1 [8]=1 [9]=2 [10]=3 [11]=3
    const values = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
    const bytes = emptyStatuses(12, 2);
    values.forEach((v, i) => setStatus(bytes, i, v, 2));
    expect([...bytes]).toEqual([0xc9, 0x44, 0xf9]);
    expect(encodeStatuses(bytes)).toBe('eNo76fITAAPfAgc');
  });

  it('refuses an lst that inflates past the limit (a DEFLATE bomb aimed at a verifier)', () => {
    const bomb = encodeStatuses(new Uint8Array(1024 * 1024));
    expect(() => decodeStatuses(bomb, 64 * 1024)).toThrow();
  });
});
