import { type EnvironmentVariables, type LogLevel, validateEnvironment } from './env.validation.js';

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
  };
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
    },
    database: { uri: env.MONGODB_URI, dataDir: dataDir || undefined, timeoutMs: env.DB_TIMEOUT_MS ?? 5_000 },
    relation: { maxDevicesPerAccount: env.MAX_DEVICES_PER_ACCOUNT ?? 10_000 },
    security: {
      apiKeys: env.API_KEYS ? parseApiKeys(env.API_KEYS) : undefined,
      rateLimitMax: env.RATE_LIMIT_MAX ?? 6_000,
      rateLimitWindowS: env.RATE_LIMIT_WINDOW_S ?? 60,
    },
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
