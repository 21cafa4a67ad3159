import { plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateBy, validateSync } from 'class-validator';
import { parseTrustProxy } from './trust-proxy.js';

/** DESIGN.md, Configuration: each API key at least 16 characters. */
export const MIN_API_KEY_LENGTH = 16;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const METRICS_MODES = ['off', 'public', 'key'] as const;
export type MetricsMode = (typeof METRICS_MODES)[number];

/** Every environment variable the service reads, with its type and range (README, Configuration). */
export class EnvironmentVariables {
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT?: number;

  @IsOptional()
  @IsString()
  HOST?: string;

  @IsOptional()
  @Matches(/^mongodb(\+srv)?:\/\/\S+$/, { message: 'MONGODB_URI must be a mongodb:// or mongodb+srv:// URI' })
  MONGODB_URI?: string;

  @IsOptional()
  @IsString()
  DATA_DIR?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100_000)
  MAX_DEVICES_PER_ACCOUNT?: number;

  @IsOptional()
  @Matches(/^\s*[^\s:,]+:(read|write)\s*(,\s*[^\s:,]+:(read|write)\s*)*$/, {
    message: 'API_KEYS must be key:role pairs separated by commas, roles read or write',
  })
  // Short keys are guessed: a fuzzer found "r" and "w". The message never repeats a key.
  @Matches(new RegExp(`^\\s*[^\\s:,]{${MIN_API_KEY_LENGTH},}:[^,]*(,\\s*[^\\s:,]{${MIN_API_KEY_LENGTH},}:[^,]*)*$`), {
    message: `API_KEYS: every key must be at least ${MIN_API_KEY_LENGTH} characters long`,
  })
  API_KEYS?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  RATE_LIMIT_MAX?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  RATE_LIMIT_WINDOW_S?: number;

  @IsOptional()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsOptional()
  @ValidateBy({
    name: 'isTrustProxy',
    validator: {
      validate: (value) => typeof value === 'string' && parseTrustProxy(value) !== undefined,
      defaultMessage: () =>
        'TRUST_PROXY must be true, false, a number of proxy hops, or a comma-separated list of proxy addresses or CIDRs (or loopback, linklocal, uniquelocal)',
    },
  })
  TRUST_PROXY?: string;

  @IsOptional()
  @IsIn(METRICS_MODES, { message: `METRICS must be one of ${METRICS_MODES.join(', ')}` })
  @ValidateBy({
    name: 'metricsKeyNeedsApiKeys',
    validator: {
      validate: (value, args) => value !== 'key' || Boolean((args?.object as EnvironmentVariables).API_KEYS),
      defaultMessage: () => 'METRICS=key needs API_KEYS: /metrics would then take a key that cannot exist',
    },
  })
  METRICS?: MetricsMode;

  @IsOptional()
  @IsInt()
  @Min(1024)
  @Max(1_073_741_824)
  BODY_LIMIT_BYTES?: number;

  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(600_000)
  DB_TIMEOUT_MS?: number;

  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  REQUEST_TIMEOUT_MS?: number;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_TIMEOUT_MS?: number;

  @IsOptional()
  @IsString()
  CORS_ORIGINS?: string;

  @IsOptional()
  @IsIn(LOG_LEVELS)
  LOG_LEVEL?: LogLevel;

  @IsOptional()
  @IsIn(['json', 'pretty'])
  LOG_FORMAT?: 'json' | 'pretty';
}

/** Validates the environment; throws one line naming every bad variable. */
export function validateEnvironment(raw: Record<string, unknown>): EnvironmentVariables {
  // Empty values count as unset, so `DATA_DIR=` and friends behave as documented.
  const present = Object.fromEntries(Object.entries(raw).filter(([key, value]) => (key !== 'DATA_DIR' ? value !== '' : true)));
  const env = plainToInstance(EnvironmentVariables, present, { enableImplicitConversion: true });
  const errors = validateSync(env, { skipMissingProperties: false, forbidUnknownValues: false });
  if (errors.length > 0) {
    const lines = errors.flatMap((error) => Object.values(error.constraints ?? {}));
    throw new Error(`Invalid configuration: ${lines.join('; ')}`);
  }
  return env;
}
