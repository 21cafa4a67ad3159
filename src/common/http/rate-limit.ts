import fastifyRateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import { HttpException, HttpStatus, Logger } from '@nestjs/common';
import { type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Redis } from 'ioredis';
import { type Configuration } from '../../config/configuration.js';

const logger = new Logger('RateLimit');

/** Every instance on one Redis shares these counters. */
const KEY_PREFIX = 'refmany:rate-limit:';

/**
 * A Redis on the same network answers in well under a millisecond; past this a request stops
 * waiting for it and is let through (see `registerRateLimit`). Generous, because the timer is
 * measured on this process's event loop: an instance starved of CPU would otherwise take a slow
 * loop for a hung Redis and stop counting.
 */
const REDIS_COMMAND_TIMEOUT_MS = 2_000;

/** While Redis is unavailable, one request this often tries it; the others do not wait for it. */
const PROBE_INTERVAL_MS = 1_000;

/** Fixed windows, as the in-memory store keeps them: the first request of a window starts its clock. */
const INCREMENT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { current, redis.call('PTTL', KEYS[1]) }`;

type RateLimitRedis = Redis & { rateLimitIncrement(key: string, windowMs: number): Promise<[number, number]> };

/**
 * RATE_LIMIT_MAX requests per client address per RATE_LIMIT_WINDOW_S on every route but the
 * ones marked `@Public()` (health checks, metrics); past it, 429 in the error shape with
 * Retry-After. Every answer carries X-RateLimit-Limit, -Remaining and -Reset (seconds until the
 * window resets). The client address is the connection's, or, behind proxies named by
 * TRUST_PROXY, the one they forwarded. Counting happens before the body is read and before the
 * API key is checked, so floods without a key are limited too.
 *
 * With REDIS_URL every instance counts in one Redis, so N instances together admit RATE_LIMIT_MAX
 * per client; without it each instance counts in its own memory. While Redis cannot be reached
 * requests are admitted (fail open) and a warning is logged once per outage: the limit guards
 * against abuse, and turning a Redis outage into an outage of the whole API (503) would hand
 * every client the denial of service the limit exists to prevent. Counting resumes in Redis as
 * soon as it answers again.
 */
export async function registerRateLimit(app: NestFastifyApplication, security: Configuration['security']): Promise<void> {
  const { rateLimitMax: max, rateLimitWindowS: windowS, rateLimitRedisUrl: redisUrl } = security;
  if (max === 0) return;
  const counters = redisUrl ? await RedisCounters.connect(redisUrl) : undefined;
  await app.register(fastifyRateLimit, {
    max,
    timeWindow: windowS * 1000,
    hook: 'onRequest',
    // As many clients as the in-house limiter tracked before the least recent is forgotten.
    cache: 10_000,
    store: counters ? redisStore(counters) : undefined,
    skipOnError: true,
    // Thrown through Nest's exception filter, which gives it the error shape.
    errorResponseBuilder: (_request, { ttl }) => {
      const retryAfter = Math.max(1, Math.ceil(ttl / 1000));
      return new HttpException(
        { message: `Too many requests: at most ${max} per ${windowS} s; retry in ${retryAfter} s` },
        HttpStatus.TOO_MANY_REQUESTS,
      );
    },
  });
  if (counters)
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onClose', () => counters.close());
}

/**
 * Counters in Redis, through a client that never queues: while Redis is away a command fails at
 * once (or after REDIS_COMMAND_TIMEOUT_MS if Redis hangs) instead of holding the request until
 * Redis returns, and the client reconnects by itself. One warning when Redis goes away and one
 * line when it is back, not one per request.
 */
class RedisCounters {
  private unavailableSince?: number;
  private lastProbe = 0;

  private constructor(private readonly redis: RateLimitRedis) {
    redis.defineCommand('rateLimitIncrement', { numberOfKeys: 1, lua: INCREMENT });
    redis.on('error', (error: Error) => this.unavailable(error));
    redis.on('ready', () => this.available());
  }

  /**
   * Start-up waits for the first connection, so the first requests are counted in Redis too;
   * if Redis is not there the service starts all the same and connects when it can.
   */
  static async connect(url: string): Promise<RedisCounters> {
    // Loaded here, not at the top: without REDIS_URL the client (about 20 MB) is never needed.
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    }) as RateLimitRedis;
    const counters = new RedisCounters(redis);
    await redis.connect().catch((error: Error) => counters.unavailable(error));
    return counters;
  }

  /**
   * The count in this window including this request, and the milliseconds left in it. While
   * Redis is unavailable this fails at once but for one probe a second, so a Redis that hangs
   * delays one request a second by REDIS_COMMAND_TIMEOUT_MS, not every request.
   */
  async increment(key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
    if (this.unavailableSince !== undefined) {
      const now = Date.now();
      if (now - this.lastProbe < PROBE_INTERVAL_MS) throw new Error('Redis is unavailable');
      this.lastProbe = now;
    }
    try {
      const [current, ttl] = await this.redis.rateLimitIncrement(KEY_PREFIX + key, windowMs);
      this.available();
      return { current, ttl };
    } catch (error) {
      this.unavailable(error as Error);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private unavailable(error: Error): void {
    if (this.unavailableSince !== undefined) return;
    this.unavailableSince = Date.now();
    logger.warn(`Redis is unavailable (${error.message}); requests are admitted without a rate limit until it answers again`);
  }

  private available(): void {
    if (this.unavailableSince === undefined) return;
    logger.log(`Redis answers again after ${Date.now() - this.unavailableSince} ms; the shared rate limit applies again`);
    this.unavailableSince = undefined;
  }
}

function redisStore(counters: RedisCounters): FastifyRateLimitStoreCtor {
  return class RedisWindowStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      counters.increment(key, timeWindow).then(
        (result) => callback(null, result),
        (error: Error) => callback(error),
      );
    }

    /** Routes set no limits of their own (only `rateLimit: false`), so every route shares one store. */
    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
