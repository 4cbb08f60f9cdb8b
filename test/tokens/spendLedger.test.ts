// The spend ledger (src/tokens/spendLedger.ts) remembers this process's committed spends for the
// requests still in flight, within a bound of memory.
import { describe, expect, it } from 'vitest';
import { SpendLedger } from '../../src/tokens/spendLedger.js';

describe('SpendLedger', () => {
  it('judges a request that arrived before the commit as in flight, and one after it as a replay', () => {
    const ledger = new SpendLedger();
    const early = ledger.arrival();
    ledger.begin('t');
    ledger.settle('t', true, 1000);
    const late = ledger.arrival();
    expect(ledger.inFlightAtCommit('t', early, 999)).toBe(true);
    expect(ledger.inFlightAtCommit('t', late, 1001)).toBe(false);
  });

  it('remembers the last 10,000 spends and forgets older ones (judged by their stored time then)', () => {
    const ledger = new SpendLedger();
    const arrival = ledger.arrival();
    for (let i = 0; i <= 10_000; i++) {
      ledger.begin(`t${i}`);
      ledger.settle(`t${i}`, true, 1000);
    }
    expect(ledger.inFlightAtCommit('t0', arrival, 1001)).toBeUndefined();
    expect(ledger.inFlightAtCommit('t1', arrival, 1001)).toBe(true);
    expect(ledger.inFlightAtCommit('t10000', arrival, 1001)).toBe(true);
  });
});
