// Time comes from here, never from Date.now() below config: tests inject a clock they control.
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export const seconds = (ms: number): number => Math.floor(ms / 1000);
