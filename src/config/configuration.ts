import { type EnvironmentVariables, type LogLevel, type MetricsMode, validateEnvironment } from './env.validation.js';
import { parseTrustProxy, type TrustProxy } from './trust-proxy.js';

export type ApiRole = 'read' | 'write';

/** The typed configuration; the defaults are the ones DESIGN.md and the README give. */
export interface Configuration {
  http: {
    port: number;
    host: string;
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    shutdownTimeoutMs: number;
    /** Undefined: CORS off. */
    corsOrigins?: string[];
    /** Which X-Forwarded-For hops name the client (Fastify's `trustProxy`); false: none. */
    trustProxy: TrustProxy;
  };
  database: {
    /** Unset: the embedded engine is resolved (DESIGN.md, Database). */
    uri?: string;
    /** Where embedded data outlives the process; undefined keeps it in memory. */
    dataDir?: string;
    timeoutMs: number;
  };
  relation: { maxDevicesPerAccount: number };
  security: {
    /** Undefined: no authentication. */
    apiKeys?: ReadonlyMap<string, ApiRole>;
    /** 0 turns rate limiting off. */
    rateLimitMax: number;
    rateLimitWindowS: number;
    /** Where every instance counts requests together; undefined: each instance in its own memory. */
    rateLimitRedisUrl?: string;
  };
  /** GET /metrics: `off`, open to anyone (`public`), or only with an API key (`key`). */
  metrics: { mode: MetricsMode };
  logging: { level: LogLevel; format: 'json' | 'pretty' };
}

/** The only reader of process.env: validated, typed, defaulted. */
export function loadConfiguration(raw: Record<string, unknown> = process.env): Configuration {
  const env: EnvironmentVariables = validateEnvironment(raw);
  const dataDir = typeof raw.DATA_DIR === 'string' ? raw.DATA_DIR : '.data';
  return {
    http: {
      port: env.PORT ?? 3000,
      host: env.HOST ?? '127.0.0.1',
      bodyLimitBytes: env.BODY_LIMIT_BYTES ?? 1_048_576,
      requestTimeoutMs: env.REQUEST_TIMEOUT_MS ?? 30_000,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS ?? 10_000,
      corsOrigins: env.CORS_ORIGINS
        ? env.CORS_ORIGINS.split(',')
            .map((origin) => origin.trim())
            .filter(Boolean)
        : undefined,
      trustProxy: env.TRUST_PROXY ? parseTrustProxy(env.TRUST_PROXY)! : false,
    },
    database: { uri: env.MONGODB_URI, dataDir: dataDir || undefined, timeoutMs: env.DB_TIMEOUT_MS ?? 5_000 },
    relation: { maxDevicesPerAccount: env.MAX_DEVICES_PER_ACCOUNT ?? 10_000 },
    security: {
      apiKeys: env.API_KEYS ? parseApiKeys(env.API_KEYS) : undefined,
      rateLimitMax: env.RATE_LIMIT_MAX ?? 6_000,
      rateLimitWindowS: env.RATE_LIMIT_WINDOW_S ?? 60,
      rateLimitRedisUrl: env.REDIS_URL,
    },
    // Metrics show traffic and timings: behind a key whenever the API itself is.
    metrics: { mode: env.METRICS ?? (env.API_KEYS ? 'key' : 'public') },
    logging: {
      level: env.LOG_LEVEL ?? 'info',
      // Pretty only for a person at a terminal outside production, unless asked explicitly.
      format: env.LOG_FORMAT ?? (process.stdout.isTTY && raw.NODE_ENV !== 'production' ? 'pretty' : 'json'),
    },
  };
}

function parseApiKeys(value: string): Map<string, ApiRole> {
  return new Map(
    value.split(',').map((entry) => {
      const [key, role] = entry.trim().split(':');
      return [key, role as ApiRole];
    }),
  );
}
