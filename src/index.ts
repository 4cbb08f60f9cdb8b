// The package's main entry: the server factory for embedding and tests.
export { createApp, type App, type AppOptions } from './app.js';
export { loadConfig, validateConfig, ConfigError, type Config } from './config.js';
export { openStore, migrate, type Store } from './store/database.js';
export { systemClock, type Clock } from './clock.js';
