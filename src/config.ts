// Configuration: config/default.json < config/local.json < --config FILE (or TOLLGATE_CONFIG)
// < environment variables. Validated once here; everything below receives a typed Config.
// config/load.ts reads the sources, config/validate.ts checks them against config/schema.ts.
export { ALGORITHMS, parseDuration } from './config/schema.js';
export type { Config, SigningAlgorithm } from './config/schema.js';
export { deepMerge } from './config/json.js';
export { ConfigError, validateConfig } from './config/validate.js';
export { PROJECT_ROOT, loadConfig, resolveDatabase } from './config/load.js';
export type { LoadOptions } from './config/load.js';
