// `npm start`: the server on the configured store (SQLite data/tollgate.db by default).
import { ConfigError, loadConfig } from './config.js';
import { KeyEncryptionError } from './keys/encryption.js';
import { serve } from './server.js';

try {
  await serve({ config: loadConfig() });
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`tollgate: ${e.message}\n`);
    process.exit(2);
  }
  if (e instanceof KeyEncryptionError) {
    process.stderr.write(`tollgate: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`tollgate: cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
