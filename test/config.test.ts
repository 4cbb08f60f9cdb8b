// Configuration (INTERFACE.md): config/default.json < config/local.json < --config FILE (or
// TOLLGATE_CONFIG) < environment variables; an invalid value is one line naming the key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig } from '../src/config.js';
import defaults from '../config/default.json' with { type: 'json' };

describe('loadConfig', () => {
  let root: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-config-'));
    fs.mkdirSync(path.join(root, 'config'));
    fs.writeFileSync(path.join(root, 'config', 'default.json'), JSON.stringify(defaults));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const write = (name: string, json: unknown) => {
    const file = path.join(root, 'config', name);
    fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
    return file;
  };
  const load = (options: Parameters<typeof loadConfig>[0] = {}) => loadConfig({ root, env: {}, ...options });

  /** The ConfigError a load throws (fails the test if it does not throw one). */
  function configError(fn: () => unknown): ConfigError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const err = e as ConfigError;
      expect(err.message).not.toContain('\n');
      return err;
    }
    throw new Error('expected a ConfigError');
  }

  describe('precedence', () => {
    it('starts from config/default.json', () => {
      const config = load();
      expect(config.server).toMatchObject({ host: '127.0.0.1', port: 3000 });
      expect(config.issuer).toBe('http://127.0.0.1:3000');
      expect(config.accessTokens.ttlSeconds).toBe(300);
      expect(config.passwords).toMatchObject({ memoryCostKiB: 19456, timeCost: 2, parallelism: 1 });
      // relative paths in config files resolve against the project root
      expect(config.database.url).toBe(path.join(root, 'data', 'tollgate.db'));
      expect(config.keys.encryptionKeyFile).toBe(path.join(root, 'keys', 'master.key'));
    });

    it('lets config/local.json override the defaults, key by key', () => {
      write('local.json', { server: { port: 4000 }, accessTokens: { ttlSeconds: 600 } });
      const config = load();
      expect(config.server.port).toBe(4000);
      expect(config.server.host).toBe('127.0.0.1');
      expect(config.accessTokens).toMatchObject({ ttlSeconds: 600, clockToleranceSeconds: 5 });
    });

    it('lets the --config file override config/local.json', () => {
      write('local.json', { server: { port: 4000, host: '0.0.0.0' } });
      const file = write('production.json', { server: { port: 5000 }, database: { url: 'data/prod.db' } });
      const config = load({ configFile: file });
      expect(config.server).toMatchObject({ port: 5000, host: '0.0.0.0' });
      expect(config.database.url).toBe(path.join(root, 'data', 'prod.db'));
    });

    it('reads the file named by TOLLGATE_CONFIG when there is no --config', () => {
      const file = write('production.json', { server: { port: 5000 } });
      expect(load({ env: { TOLLGATE_CONFIG: file } }).server.port).toBe(5000);
    });

    it('prefers --config over TOLLGATE_CONFIG', () => {
      const a = write('a.json', { server: { port: 5001 } });
      const b = write('b.json', { server: { port: 5002 } });
      expect(load({ configFile: a, env: { TOLLGATE_CONFIG: b } }).server.port).toBe(5001);
    });

    it('lets environment variables override every file', () => {
      write('local.json', { server: { port: 4000 }, issuer: 'https://local.example.com' });
      const file = write('production.json', { server: { port: 5000, host: '10.0.0.1' }, issuer: 'https://file.example.com' });
      const kek = crypto.randomBytes(32).toString('base64url');
      const config = load({
        configFile: file,
        env: {
          TOLLGATE_PORT: '6000',
          TOLLGATE_HOST: '0.0.0.0',
          TOLLGATE_ISSUER: 'https://auth.example.com',
          TOLLGATE_DATABASE: ':memory:',
          TOLLGATE_KEY_ENCRYPTION_KEY: kek,
        },
      });
      expect(config.server).toMatchObject({ port: 6000, host: '0.0.0.0' });
      expect(config.issuer).toBe('https://auth.example.com');
      expect(config.database.url).toBe(':memory:');
      expect(config.keys.encryptionKey).toBe(kek);
    });

    it('resolves a relative TOLLGATE_DATABASE against the working directory and keeps postgres:// URLs', () => {
      expect(load({ env: { TOLLGATE_DATABASE: 'some/file.db' } }).database.url).toBe(path.resolve('some/file.db'));
      expect(load({ env: { TOLLGATE_DATABASE: 'postgres://u:p@db/tollgate' } }).database.url).toBe('postgres://u:p@db/tollgate');
    });

    it('lets --database (the CLI) override TOLLGATE_DATABASE', () => {
      const config = load({ database: path.join(root, 'cli.db'), env: { TOLLGATE_DATABASE: path.join(root, 'env.db') } });
      expect(config.database.url).toBe(path.join(root, 'cli.db'));
    });

    it('ignores empty environment variables', () => {
      expect(load({ env: { TOLLGATE_PORT: '', TOLLGATE_ISSUER: '' } }).server.port).toBe(3000);
    });

    it('strips a trailing slash from the issuer', () => {
      expect(load({ env: { TOLLGATE_ISSUER: 'https://auth.example.com/' } }).issuer).toBe('https://auth.example.com');
    });
  });

  describe('the default issuer is the listen address (discovery compares the metadata issuer with the URL fetched)', () => {
    it('is http://127.0.0.1:3000 with nothing set, the address npm start listens on', () => {
      expect(defaults).not.toHaveProperty('issuer');
      expect(load().issuer).toBe('http://127.0.0.1:3000');
    });

    it.each([
      [{ TOLLGATE_PORT: '4000' }, 'http://127.0.0.1:4000'],
      [{ TOLLGATE_HOST: 'localhost' }, 'http://localhost:3000'],
      [{ TOLLGATE_HOST: '127.0.0.2', TOLLGATE_PORT: '8080' }, 'http://127.0.0.2:8080'],
      [{ TOLLGATE_HOST: '::1' }, 'http://[::1]:3000'],
      [{ TOLLGATE_HOST: '0.0.0.0' }, 'http://127.0.0.1:3000'],
      [{ TOLLGATE_HOST: '::' }, 'http://[::1]:3000'],
      [{ TOLLGATE_PORT: '80' }, 'http://127.0.0.1'],
    ])('is built from %o as %s', (env, issuer) => {
      expect(load({ env }).issuer).toBe(issuer);
    });

    it('follows server.host and server.port from a config file', () => {
      write('local.json', { server: { host: '::1', port: 4100 } });
      expect(load().issuer).toBe('http://[::1]:4100');
    });

    it('gives way to issuer in a config file and to TOLLGATE_ISSUER', () => {
      write('local.json', { issuer: 'https://file.example.com' });
      expect(load().issuer).toBe('https://file.example.com');
      expect(load({ env: { TOLLGATE_ISSUER: 'https://auth.example.com' } }).issuer).toBe('https://auth.example.com');
    });

    it('stops with one line naming issuer, the host and TOLLGATE_ISSUER when the host is not loopback', () => {
      const err = configError(() => load({ env: { TOLLGATE_HOST: '10.0.0.5' } }));
      expect(err.message).toMatch(/^config: invalid issuer/);
      expect(err.message).toContain('10.0.0.5');
      expect(err.message).toContain('TOLLGATE_HOST');
      expect(err.message).toContain('TOLLGATE_ISSUER');
    });

    it('is not needed when TOLLGATE_ISSUER names the public https:// URL of a server on any host', () => {
      expect(load({ env: { TOLLGATE_HOST: '10.0.0.5', TOLLGATE_ISSUER: 'https://auth.example.com' } }).issuer).toBe('https://auth.example.com');
    });
  });

  describe('invalid values → ConfigError naming the key', () => {
    it('names server.port and TOLLGATE_PORT for TOLLGATE_PORT=notaport', () => {
      const err = configError(() => load({ env: { TOLLGATE_PORT: 'notaport' } }));
      expect(err.message).toContain('server.port');
      expect(err.message).toContain('TOLLGATE_PORT');
    });

    it('refuses a port out of range', () => {
      expect(configError(() => load({ env: { TOLLGATE_PORT: '70000' } })).message).toContain('server.port');
    });

    it('names the key of a bad value in a file', () => {
      write('local.json', { accessTokens: { ttlSeconds: 0 } });
      expect(configError(() => load()).message).toContain('accessTokens.ttlSeconds');
    });

    it('names the key of a value of the wrong type', () => {
      const file = write('production.json', { server: { port: '8080' } });
      expect(configError(() => load({ configFile: file })).message).toContain('server.port');
    });

    it('refuses an unknown log level', () => {
      expect(configError(() => load({ env: { TOLLGATE_LOG_LEVEL: 'verbose' } })).message).toContain('log.level');
    });

    it.each(['http://auth.example.com', 'http://10.0.0.5:3000', 'http://0.0.0.0:3000'])('refuses the non-loopback http:// issuer %s', (issuer) => {
      const err = configError(() => load({ env: { TOLLGATE_ISSUER: issuer } }));
      expect(err.message).toContain('issuer');
      expect(err.message).toContain('TOLLGATE_ISSUER');
    });

    it.each(['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000', 'https://auth.example.com'])('accepts the issuer %s', (issuer) => {
      expect(load({ env: { TOLLGATE_ISSUER: issuer } }).issuer).toBe(issuer);
    });

    it.each(['auth.example.com', 'https://auth.example.com/?tenant=a', 'https://auth.example.com/#x', 'ftp://auth.example.com'])('refuses the issuer %s', (issuer) => {
      expect(configError(() => load({ env: { TOLLGATE_ISSUER: issuer } })).message).toContain('issuer');
    });

    it('names TOLLGATE_KEY_ENCRYPTION_KEY for a malformed key, without echoing it', () => {
      const bad = 'not-a-32-byte-key-but-a-secret-anyway';
      const err = configError(() => load({ env: { TOLLGATE_KEY_ENCRYPTION_KEY: bad } }));
      expect(err.message).toContain('TOLLGATE_KEY_ENCRYPTION_KEY');
      expect(err.message).not.toContain(bad);
    });

    it('refuses an idle refresh lifetime longer than the absolute one', () => {
      write('local.json', { refreshTokens: { idleTtlSeconds: 100, absoluteTtlSeconds: 50 } });
      expect(configError(() => load()).message).toContain('refreshTokens.idleTtlSeconds');
    });

    it('bounds SSE streams per client and in all by default, below a server-wide connection cap', () => {
      const config = load();
      expect(config.denyList).toMatchObject({ maxStreamsPerClient: 8, maxStreams: 1000 });
      expect(config.server.maxConnections).toBeGreaterThan(config.denyList.maxStreams);
    });

    it('refuses a stream cap that would take every connection, or a per-client cap above the total', () => {
      write('local.json', { server: { maxConnections: 100 }, denyList: { maxStreams: 100 } });
      expect(configError(() => load()).message).toContain('denyList.maxStreams');
      write('local.json', { denyList: { maxStreams: 4, maxStreamsPerClient: 5 } });
      expect(configError(() => load()).message).toContain('denyList.maxStreamsPerClient');
      write('local.json', { denyList: { maxStreamsPerClient: 0 } });
      expect(configError(() => load()).message).toContain('denyList.maxStreamsPerClient');
    });

    it('refuses argon2 parameters below the floor', () => {
      write('local.json', { passwords: { memoryCostKiB: 8 } });
      expect(configError(() => load()).message).toContain('passwords.memoryCostKiB');
    });

    it('refuses a missing --config file, naming it', () => {
      const missing = path.join(root, 'nope.json');
      expect(configError(() => load({ configFile: missing })).message).toContain(missing);
    });

    it('refuses a config file that is not JSON, naming it', () => {
      const file = write('local.json', '{ "server": ');
      expect(configError(() => load()).message).toContain(file);
    });

    it('refuses a config file that is not a JSON object', () => {
      write('local.json', '[1, 2]');
      configError(() => load());
    });
  });

  describe('validateConfig', () => {
    it('names the first bad key even without sources', () => {
      const raw = structuredClone(defaults) as Record<string, unknown> & { server: Record<string, unknown> };
      raw.server.workers = 0;
      expect(configError(() => validateConfig(raw)).message).toMatch(/server\.workers/);
    });

    it('refuses a missing section', () => {
      const raw: Record<string, unknown> = structuredClone(defaults);
      delete raw.refreshTokens;
      expect(configError(() => validateConfig(raw)).message).toContain('refreshTokens');
    });
  });
});

describe('config files outside the project', () => {
  it('resolve relative paths against their own folder (an operator\'s /etc/tollgate.json)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-etc-'));
    try {
      const file = path.join(dir, 'tollgate.json');
      fs.writeFileSync(file, JSON.stringify({ database: { url: 'tollgate.db' } }));
      expect(loadConfig({ configFile: file, env: {} }).database.url).toBe(path.join(dir, 'tollgate.db'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a misspelt key with one line naming it, instead of ignoring it', () => {
    expect(() => validateConfig({ ...defaults, acessTokens: { ttlSeconds: 60 } })).toThrow(/unknown key acessTokens/);
    expect(() => validateConfig({ ...defaults, server: { ...defaults.server, prot: 3000 } })).toThrow(/server.*unknown key prot/);
  });
});
