import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import request, { type Response } from 'supertest';
import { type Configuration } from '../src/config/configuration.js';
import { freePort } from './support/processes.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { createTestApp, type TestApp } from './support/test-app.js';

type Security = Partial<Configuration['security']>;

const limited = (max: number, security: Security = {}, http: Partial<Configuration['http']> = {}) =>
  createTestApp({ config: { security: { rateLimitMax: max, rateLimitWindowS: 60, ...security }, http } });

function rateHeaders(res: Response) {
  return {
    limit: Number(res.headers['x-ratelimit-limit']),
    remaining: Number(res.headers['x-ratelimit-remaining']),
    reset: Number(res.headers['x-ratelimit-reset']),
  };
}

function expect429(res: Response, max: number): void {
  expect(res.status).toBe(429);
  expect(res.body).toEqual({ statusCode: 429, error: 'Too Many Requests', message: expect.stringContaining(`at most ${max} per 60 s`) });
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  expect(rateHeaders(res)).toEqual({ limit: max, remaining: 0, reset: Number(res.headers['retry-after']) });
}

describe('Rate limit, in memory', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('sends X-RateLimit-Limit, -Remaining and -Reset on every counted answer, and 429 past the limit', async () => {
    t = await limited(3);
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await request(t.http).get('/api/devices').expect(200));
    expect(answers.map((res) => rateHeaders(res).remaining)).toEqual([2, 1, 0]);
    for (const res of answers) {
      expect(rateHeaders(res).limit).toBe(3);
      expect(rateHeaders(res).reset).toBeGreaterThanOrEqual(1);
      expect(rateHeaders(res).reset).toBeLessThanOrEqual(60);
    }
    expect429(await request(t.http).get('/api/devices'), 3);
    expect429(await request(t.http).get('/api/accounts/count'), 3);
  });

  it('counts and limits a request before its API key is checked, so floods without a key are limited too', async () => {
    t = await limited(3, { apiKeys: new Map([['a-write-key-0001', 'write']]) });
    for (let i = 0; i < 3; i += 1) expect((await request(t.http).get('/api/devices')).status).toBe(401);
    expect429(await request(t.http).get('/api/devices'), 3);
    expect429(await request(t.http).get('/api/devices').set('x-api-key', 'a-write-key-0001'), 3);
  });

  it('answers 429 to a body it has not read, and stores nothing', async () => {
    t = await limited(1);
    await t.clear();
    await request(t.http).get('/api/devices').expect(200);
    const res = await request(t.http).post('/api/devices').send({ myId: 'late', deviceUID: 'UID-LATE' });
    expect429(res, 1);
    expect(await t.devices.countDocuments()).toBe(0);
  });

  it('never counts or limits /health, /health/ready and /metrics, and sends them no rate-limit headers', async () => {
    t = await limited(2, {}, {});
    for (let i = 0; i < 5; i += 1) {
      for (const path of ['/health', '/health/ready', '/metrics']) {
        const res = await request(t.http).get(path).expect(200);
        expect(res.headers).not.toHaveProperty('x-ratelimit-limit');
      }
    }
    expect(rateHeaders(await request(t.http).get('/api/devices').expect(200)).remaining).toBe(1);
  });

  describe('client addresses (TRUST_PROXY)', () => {
    /** Sends `count` requests as if from `client` through a proxy; returns the statuses. */
    async function from(app: TestApp, client: string, count: number): Promise<number[]> {
      const statuses: number[] = [];
      for (let i = 0; i < count; i += 1)
        statuses.push((await request(app.http).get('/api/devices/count').set('x-forwarded-for', client)).status);
      return statuses;
    }

    it('ignores X-Forwarded-For by default: a client cannot pick itself a fresh bucket', async () => {
      t = await limited(4);
      expect(await from(t, '203.0.113.1', 2)).toEqual([200, 200]);
      expect(await from(t, '203.0.113.2', 3)).toEqual([200, 200, 429]);
      expect(await from(t, '198.51.100.7', 1)).toEqual([429]);
    });

    it.each([
      ['the proxy by address (loopback)', ['loopback']],
      ['the proxy by CIDR', ['127.0.0.0/8', '::1/128']],
      ['one proxy hop', 1],
      ['every proxy (true)', true],
    ] as const)('gives each forwarded client its own bucket when trusting %s', async (_case, trustProxy) => {
      t = await limited(2, {}, { trustProxy: trustProxy as Configuration['http']['trustProxy'] });
      expect(await from(t, '203.0.113.1', 3)).toEqual([200, 200, 429]);
      expect(await from(t, '203.0.113.2', 3)).toEqual([200, 200, 429]);
      // The last hop is the client when one proxy is trusted, whatever a client put before it.
      expect(await from(t, '10.9.9.9, 203.0.113.3', 2)).toEqual([200, 200]);
    });

    it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
      t = await limited(2, {}, { trustProxy: ['10.0.0.1'] });
      expect(await from(t, '203.0.113.1', 1)).toEqual([200]);
      expect(await from(t, '203.0.113.2', 2)).toEqual([200, 429]);
    });
  });
});

describe('Rate limit shared in Redis (REDIS_URL)', () => {
  let redis: RedisServer;
  let admin: Redis;
  const apps: TestApp[] = [];
  const warn = jest.spyOn(Logger.prototype, 'warn');

  const app = async (max: number, redisUrl = redis.url) => {
    const created = await limited(max, { rateLimitRedisUrl: redisUrl });
    apps.push(created);
    return created;
  };
  const redisWarnings = () => warn.mock.calls.filter(([message]) => /Redis is unavailable/.test(String(message)));

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    warn.mockRestore();
    await redis.stop();
  });
  beforeEach(async () => {
    admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    await admin.flushall();
    warn.mockClear();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((created) => created.close()));
    admin.disconnect();
  });

  it('admits at most RATE_LIMIT_MAX per client across two instances together, counting in Redis', async () => {
    const [first, second] = [await app(5), await app(5)];
    const remaining: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await request((i % 2 === 0 ? first : second).http)
        .get('/api/devices')
        .expect(200);
      remaining.push(rateHeaders(res).remaining);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    expect429(await request(second.http).get('/api/devices'), 5);
    expect429(await request(first.http).get('/api/devices'), 5);

    const keys = await admin.keys('refmany:rate-limit:*');
    expect(keys).toHaveLength(1);
    expect(Number(await admin.get(keys[0]))).toBe(7);
    const ttl = await admin.pttl(keys[0]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('admits requests while Redis is down, warns once, and counts in Redis again once it is back', async () => {
    const t = await app(2);
    await request(t.http).get('/api/devices').expect(200);
    await redis.stop();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await request(t.http).get('/api/devices')).status);
    expect(statuses).toEqual(Array(6).fill(200));
    expect(redisWarnings()).toHaveLength(1);

    await redis.start();
    // The client reconnects on its own (within about two seconds); until then requests pass.
    let res: Response | undefined;
    for (let attempt = 0; attempt < 100; attempt += 1) {
      res = await request(t.http).get('/api/devices');
      if (res.status !== 200 || rateHeaders(res).remaining < 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rateHeaders(res!).remaining).toBe(1);
    await request(t.http).get('/api/devices').expect(200);
    expect429(await request(t.http).get('/api/devices'), 2);
    expect(redisWarnings()).toHaveLength(1);
  });

  it('does not hold requests behind a Redis that stopped answering', async () => {
    const t = await app(2);
    await request(t.http).get('/api/devices').expect(200);
    redis.pause();
    try {
      const statuses = await Promise.all(
        Array.from({ length: 4 }, () =>
          request(t.http)
            .get('/api/devices')
            .then((res) => res.status),
        ),
      );
      expect(statuses).toEqual(Array(4).fill(200));
      expect(redisWarnings().length).toBeGreaterThanOrEqual(1);
    } finally {
      redis.resume();
    }
  });

  it('starts when REDIS_URL names a Redis that is not there, and admits requests', async () => {
    const t = await app(2, `redis://127.0.0.1:${await freePort()}`);
    for (let i = 0; i < 4; i += 1) await request(t.http).get('/api/devices').expect(200);
    expect(redisWarnings()).toHaveLength(1);
  });
});
