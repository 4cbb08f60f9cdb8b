// What a valid configuration is: the zod schema, and the types the rest of the server receives.
import { z } from 'zod';

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "30d" → seconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
}

const LOOPBACK = new Set(['localhost', '[::1]', '::1']);

/** Plain http:// only where nothing but this machine can listen in: localhost, 127.0.0.0/8, ::1. */
function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || /^127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(hostname);
}

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type SigningAlgorithm = (typeof ALGORITHMS)[number];
/** What a DPoP proof may be signed with: asymmetric JWS algorithms jose verifies. */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

export const issuerSchema = z
  .string()
  // abort: the refinements below parse the URL, and zod runs them even after a failure
  .refine((s) => URL.canParse(s), { message: 'expected an absolute URL', abort: true })
  .refine((s) => {
    const url = new URL(s);
    return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
  }, 'expected an https:// URL (http:// only for a loopback host)')
  .refine((s) => {
    const url = new URL(s);
    return !url.search && !url.hash;
  }, 'expected no query or fragment')
  .transform((s) => s.replace(/\/+$/, ''));

export const schema = z.strictObject({
  // absent: built from the listen address (defaultIssuer)
  issuer: issuerSchema.optional(),
  server: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    workers: z.number().int().min(1).max(64),
    trustProxy: z.boolean(),
    bodyLimitBytes: positiveInt,
    maxParameters: positiveInt,
    headersTimeoutMs: positiveInt,
    requestTimeoutMs: positiveInt,
    keepAliveTimeoutMs: positiveInt,
    shutdownTimeoutMs: positiveInt,
    maxConnections: positiveInt,
  }),
  database: z.strictObject({
    url: z.string().min(1),
    busyTimeoutMs: nonNegativeInt,
    poolSize: positiveInt,
  }),
  keys: z.strictObject({
    algorithm: z.enum(ALGORITHMS),
    encryptionKeyFile: z.string().min(1),
    encryptionKey: z
      .string()
      .refine((s) => /^[A-Za-z0-9_-]{43}$/.test(s) && Buffer.from(s, 'base64url').length === 32, 'expected 32 bytes in base64url')
      .optional(),
    rotateEvery: z
      .string()
      .nullable()
      .refine((s) => s === null || (parseDuration(s) ?? 0) > 0, 'expected a duration like "30d", "12h" or null'),
    reloadIntervalMs: positiveInt,
    jwksMaxAgeSeconds: nonNegativeInt,
  }),
  accessTokens: z.strictObject({
    ttlSeconds: z.number().int().min(1).max(86400),
    clockToleranceSeconds: z.number().int().min(0).max(300),
  }),
  refreshTokens: z.strictObject({
    idleTtlSeconds: positiveInt,
    absoluteTtlSeconds: positiveInt,
    retryGraceSeconds: z.number().int().min(0).max(60),
  }),
  passwords: z.strictObject({
    memoryCostKiB: z.number().int().min(1024),
    timeCost: z.number().int().min(1),
    parallelism: z.number().int().min(1),
    maxConcurrentHashes: positiveInt,
    maxQueuedHashes: nonNegativeInt,
  }),
  throttle: z.strictObject({
    windowSeconds: positiveInt,
    maxFailuresPerUsername: positiveInt,
    maxFailuresPerIp: positiveInt,
    maxFailuresPerUsernameAndIp: positiveInt,
  }),
  denyList: z.strictObject({
    syncIntervalMs: positiveInt,
    pruneIntervalSeconds: positiveInt,
    heartbeatSeconds: positiveInt,
    maxStreamsPerClient: positiveInt,
    maxStreams: positiveInt,
  }),
  // Token Status List (draft-ietf-oauth-status-list): `ttl` of the Status List Token (and how
  // often a list is re-signed at most), and the statuses per list (a multiple of 8)
  statusList: z.strictObject({
    ttlSeconds: z.number().int().min(1).max(3600),
    listSize: z
      .number()
      .int()
      .min(1024)
      .max(2 ** 24)
      .refine((n) => n % 8 === 0, 'expected a multiple of 8'),
  }),
  // RFC 9449: proofs of possession at the token endpoint (src/dpop/)
  dpop: z.strictObject({
    // a proof's iat may be this far from now (plus accessTokens.clockToleranceSeconds), either way
    iatWindowSeconds: z.number().int().min(1).max(600),
    // §8: proofs must carry a server nonce (use_dpop_nonce otherwise)
    requireNonce: z.boolean(),
    nonceLifetimeSeconds: z.number().int().min(10).max(86400),
    // asymmetric algorithms only: never none or HMAC (§4.3 step 5)
    algorithms: z.array(z.enum(DPOP_ALGORITHMS)).min(1),
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }),
});

export type Config = Omit<z.infer<typeof schema>, 'issuer'> & { issuer: string };
