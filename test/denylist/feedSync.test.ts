// The feed's sync: calls made before a pull starts share it (GET /deny-list syncs first on every
// request: under load, one query per turn of the event loop, not one per request), and a sync
// still sees every entry committed before it was called, from this process or another.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { seconds } from '../../src/clock.js';
import { DenyList } from '../../src/denylist/denyList.js';
import { migrate, type Store } from '../../src/store/database.js';
import { DenyListRepository } from '../../src/store/denyList.js';
import { FakeClock } from '../helpers.js';
import { createTestDatabase, testDialect } from '../testDatabase.js';

describe(`deny-list sync (${testDialect()})`, () => {
  let store: Store;
  let other: Store;
  let drop: () => Promise<void>;
  const clock = new FakeClock();
  const entry = (value: string) => ({ type: 'jti' as const, value, expires_at: seconds(clock.now()) + 600 });

  beforeEach(async () => {
    const database = await createTestDatabase();
    store = database.open();
    other = database.open();
    drop = async () => {
      vi.restoreAllMocks();
      await store.close();
      await other.close();
      await database.drop();
    };
    await migrate(store);
  });
  afterEach(() => drop());

  it('answers the calls made before a pull starts with one query', async () => {
    const denyList = new DenyList({ db: store.db, clock });
    const reads = vi.spyOn(DenyListRepository.prototype, 'allAfter');
    await Promise.all([denyList.sync(), denyList.sync(), denyList.sync()]);
    expect(reads).toHaveBeenCalledTimes(1);
    await denyList.sync();
    expect(reads).toHaveBeenCalledTimes(2);
  });

  it('sees an entry another process committed before the call, even with a pull already asked for', async () => {
    const denyList = new DenyList({ db: store.db, clock });
    const first = denyList.sync();
    await new DenyListRepository(other.db).insert([entry('from-elsewhere')], clock.now());
    await Promise.all([first, denyList.sync()]);
    expect(denyList.isDenied({ jti: 'from-elsewhere' })).toBe(true);
    // and one committed while a pull may be running is seen by the next call's pull
    const running = denyList.sync();
    await new DenyListRepository(other.db).insert([entry('later')], clock.now());
    await denyList.sync();
    await running;
    expect(denyList.isDenied({ jti: 'later' })).toBe(true);
  });
});
