// Every migration, in order. Never edit one that has landed: add the next number instead.
import type { Kysely } from 'kysely';
import * as m001 from './001_initial.js';
import * as m002 from './002_drop_parent_index.js';
import * as m003 from './003_known_addresses.js';
import * as m004 from './004_access_horizon.js';
import * as m005 from './005_dpop_jti.js';
import * as m006 from './006_status_list.js';

export type Dialect = 'sqlite' | 'postgres';

export interface MigrationModule {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

export const migrations: Record<string, MigrationModule> = {
  '001_initial': m001,
  '002_drop_parent_index': m002,
  '003_known_addresses': m003,
  '004_access_horizon': m004,
  '005_dpop_jti': m005,
  '006_status_list': m006,
};
