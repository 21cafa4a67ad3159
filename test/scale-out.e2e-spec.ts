import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import { freePort, runService, type ServiceProcess, stopService, waitUntilReady } from './support/processes.js';
import { parsePrometheus, total } from './support/prometheus.js';
import { startRedis, type RedisServer } from './support/redis.js';

/**
 * Three instances of the built service (dist/main.js) on one database, behind one (simulated)
 * proxy and sharing one Redis, as they would run behind a load balancer. Requests are spread
 * over them round-robin.
 */

const INSTANCES = 3;
const MAX_DEVICES = 20;
const RATE_LIMIT = 30;
const REQUEST_TIMEOUT_MS = 15_000;

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

/** A small deterministic generator, so that every run sends the same mix. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Three instances on one database', () => {
  const databaseUri = (() => {
    const uri = new URL(process.env.TEST_MONGODB_URI!);
    uri.pathname = `/refmany_scaleout_${process.pid}`;
    return uri.toString();
  })();
  let redis: RedisServer;
  let instances: ServiceProcess[];
  let database: Connection;

  /** One request to instance `n`, as from `client` behind the proxy. */
  async function call(n: number, method: string, path: string, client: string, body?: unknown): Promise<Answer> {
    const res = await fetch(`${instances[n % INSTANCES].url}${path}`, {
      method,
      // Past the service's own REQUEST_TIMEOUT_MS (a 503), a request that still has no answer has hung.
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS + 5_000),
      headers: { 'x-forwarded-for': client, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  beforeAll(async () => {
    redis = await startRedis();
    const ports = await Promise.all(Array.from({ length: INSTANCES }, () => freePort()));
    instances = ports.map((port) =>
      runService(
        {
          MONGODB_URI: databaseUri,
          MAX_DEVICES_PER_ACCOUNT: String(MAX_DEVICES),
          RATE_LIMIT_MAX: String(RATE_LIMIT),
          RATE_LIMIT_WINDOW_S: '120',
          REDIS_URL: redis.url,
          TRUST_PROXY: 'loopback',
          METRICS: 'public',
          REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
          SHUTDOWN_TIMEOUT_MS: '5000',
          LOG_LEVEL: 'warn',
        },
        port,
      ),
    );
    await Promise.all(instances.map((instance) => waitUntilReady(instance)));
    database = await mongoose.createConnection(databaseUri).asPromise();
  }, 120_000);

  afterAll(async () => {
    await Promise.all((instances ?? []).map(stopService));
    // Bounded: an engine still busy with abandoned operations may hold the drop up.
    await Promise.race([database?.dropDatabase(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    await database?.close(true);
    await redis?.stop();
  }, 60_000);

  it(`admits at most RATE_LIMIT_MAX (${RATE_LIMIT}) requests of one client across the three instances together, counting in Redis`, async () => {
    const client = '203.0.113.50';
    const answers = await Promise.all(Array.from({ length: 3 * RATE_LIMIT }, (_, n) => call(n, 'GET', '/api/devices/count', client)));
    const statuses = answers.map((answer) => answer.status);
    const redisWarnings = instances.flatMap((instance) => instance.lines.filter((line) => /Redis/.test(line)));
    expect(redisWarnings).toEqual([]);
    expect(statuses.filter((status) => status === 200)).toHaveLength(RATE_LIMIT);
    expect(statuses.filter((status) => status === 429)).toHaveLength(2 * RATE_LIMIT);
    for (const answer of answers) expect(answer.headers.get('x-ratelimit-limit')).toBe(String(RATE_LIMIT));
    // Each instance refuses the client now, and another client behind the same proxy still gets in.
    for (let n = 0; n < INSTANCES; n += 1) expect((await call(n, 'GET', '/api/devices/count', client)).status).toBe(429);
    for (let n = 0; n < INSTANCES; n += 1) expect((await call(n, 'GET', '/api/devices/count', '203.0.113.51')).status).toBe(200);
  }, 60_000);

  it('keeps every invariant under links, link-many, replaces, unlinks and device deletions spread over the instances', async () => {
    const rng = random(12);
    const pick = <T>(items: T[]): T => items[Math.floor(rng() * items.length)];
    // 60 clients behind the proxy: each stays far below the rate limit.
    const clients = Array.from({ length: 60 }, (_, i) => `198.51.100.${i + 1}`);
    let sent = 0;
    const next = () => sent++;

    interface Device {
      _id: string;
      myId: string;
    }
    const devices: Device[] = [];
    let created = 0;
    const createDevice = async () => {
      const myId = `race-${created++}`;
      const res = await call(next(), 'POST', '/api/devices', pick(clients), { myId, deviceUID: `UID-${myId}` });
      expect(res.status).toBe(201);
      devices.push(res.body as Device);
    };
    for (let i = 0; i < 60; i += 1) await createDevice();
    const accounts: string[] = [];
    for (let k = 0; k < 6; k += 1) {
      const ids = Array.from({ length: MAX_DEVICES - 2 }, (_, i) => devices[(k * 7 + i) % devices.length]._id);
      const res = await call(next(), 'POST', '/api/accounts', pick(clients), { name: `account-${k}`, deviceIds: ids });
      expect(res.status).toBe(201);
      accounts.push((res.body as { _id: string })._id);
    }

    const key = (device: Device) => (rng() < 0.5 ? device._id : device.myId);
    // Mostly devices believed to exist; now and then one already deleted (a stale client).
    const deleted = new Set<string>();
    const live = () => devices.filter((device) => !deleted.has(device._id));
    const anyDevice = () => (rng() < 0.9 ? pick(live()) : pick(devices));
    const ids = (count: number) => [...new Set(Array.from({ length: count }, anyDevice))].map(key);
    /** `device`: the ObjectId a deletion deletes. */
    type Operation = { name: string; expected: number[]; device?: string; send: (n: number, client: string) => Promise<Answer> };
    const operations: Array<[number, () => Operation]> = [
      [
        30,
        () => {
          const [account, device] = [pick(accounts), anyDevice()];
          return {
            name: 'link',
            expected: [200, 404, 422],
            send: (n, c) => call(n, 'PUT', `/api/accounts/${account}/devices/rel/${key(device)}`, c),
          };
        },
      ],
      [
        15,
        () => {
          const [account, body] = [pick(accounts), { ids: ids(2 + Math.floor(rng() * 3)) }];
          return {
            name: 'link-many',
            expected: [200, 422],
            send: (n, c) => call(n, 'POST', `/api/accounts/${account}/devices/rel`, c, body),
          };
        },
      ],
      [
        10,
        () => {
          const [account, body] = [pick(accounts), { ids: ids(5 + Math.floor(rng() * 20)) }];
          return { name: 'replace', expected: [200, 422], send: (n, c) => call(n, 'PUT', `/api/accounts/${account}/devices/rel`, c, body) };
        },
      ],
      [
        20,
        () => {
          const [account, device] = [pick(accounts), anyDevice()];
          return {
            name: 'unlink',
            expected: [204, 404],
            send: (n, c) => call(n, 'DELETE', `/api/accounts/${account}/devices/rel/${key(device)}`, c),
          };
        },
      ],
      [
        10,
        () => {
          const device = anyDevice();
          return {
            name: 'delete device',
            expected: [200, 404],
            device: device._id,
            send: (n, c) => call(n, 'DELETE', `/api/devices/${key(device)}`, c),
          };
        },
      ],
      [
        5,
        () => {
          const [account, device] = [pick(accounts), anyDevice()];
          return {
            name: 'delete linked device',
            device: device._id,
            expected: [200, 404],
            send: (n, c) => call(n, 'DELETE', `/api/accounts/${account}/devices/${key(device)}`, c),
          };
        },
      ],
    ];
    // A hot spot: one device linked many times over, unlinked and deleted at once on one
    // account, the race DESIGN.md's first two invariants are about.
    const hotSpot = (): Operation[] => {
      const [account, device] = [pick(accounts), pick(live())];
      const rel = `/api/accounts/${account}/devices/rel`;
      const link = (): Operation => ({
        name: 'link',
        expected: [200, 404, 422],
        send: (n, c) => call(n, 'PUT', `${rel}/${key(device)}`, c),
      });
      const linkMany = (): Operation => {
        const body = { ids: [key(device), key(pick(live()))] };
        return { name: 'link-many', expected: [200, 422], send: (n, c) => call(n, 'POST', rel, c, body) };
      };
      const unlink = (): Operation => ({
        name: 'unlink',
        expected: [204, 404],
        send: (n, c) => call(n, 'DELETE', `${rel}/${key(device)}`, c),
      });
      return [
        ...Array.from({ length: 10 }, link),
        linkMany(),
        linkMany(),
        unlink(),
        unlink(),
        {
          name: 'delete device',
          expected: [200, 404],
          device: device._id,
          send: (n, c) => call(n, 'DELETE', `/api/devices/${key(device)}`, c),
        },
      ];
    };
    // A crowd: many link-many requests on one account at once, which the size limit must hold against.
    const crowd = (): Operation[] => {
      const account = pick(accounts);
      return Array.from({ length: 20 }, () => {
        const body = { ids: ids(2 + Math.floor(rng() * 2)) };
        return {
          name: 'link-many',
          expected: [200, 422],
          send: (n, c) => call(n, 'POST', `/api/accounts/${account}/devices/rel`, c, body),
        };
      });
    };
    const weight = operations.reduce((sum, [w]) => sum + w, 0);
    const choose = (): Operation => {
      let roll = rng() * weight;
      for (const [w, make] of operations) if ((roll -= w) < 0) return make();
      return operations[0][1]();
    };

    const tally = new Map<string, number>();
    const unexpected: string[] = [];
    let overLimit = 0;
    for (let round = 0; round < 6; round += 1) {
      const batch = [...Array.from({ length: 40 }, choose), ...hotSpot(), ...hotSpot(), ...crowd()];
      // The hot spots' requests land at different places among the others, and on every instance.
      for (let i = batch.length - 1; i > 0; i -= 1) {
        const j = Math.floor(rng() * (i + 1));
        [batch[i], batch[j]] = [batch[j], batch[i]];
      }
      const answers = await Promise.all(
        batch.map((operation) =>
          operation
            .send(next(), pick(clients))
            .catch((error: Error): Answer => ({ status: 0, body: error.message, headers: new Headers() })),
        ),
      );
      answers.forEach((answer, i) => {
        const { name, expected } = batch[i];
        tally.set(`${name} ${answer.status}`, (tally.get(`${name} ${answer.status}`) ?? 0) + 1);
        if (!expected.includes(answer.status)) {
          const message = typeof answer.body === 'string' ? answer.body : (answer.body as { message?: string } | undefined)?.message;
          unexpected.push(`${name} → ${answer.status || 'no answer'}: ${message}`);
        }
        if (answer.status === 200 && name.startsWith('delete')) deleted.add(batch[i].device!);
        const details = (answer.body as { details?: Array<{ code: string }> } | undefined)?.details;
        if (answer.status === 422 && details?.some((detail) => detail.code === 'too_many_devices')) overLimit += 1;
      });
      // Fresh devices between rounds keep links succeeding as deletions thin the pool out.
      for (let i = 0; i < 6; i += 1) await createDevice();
    }
    console.log(
      `race mix over ${INSTANCES} instances: ${[...tally]
        .sort()
        .map(([outcome, count]) => `${outcome} ×${count}`)
        .join(', ')}`,
    );

    // Everything that went wrong, in one assertion, so that a failing run reports all of it.
    const stored = await database
      .collection('accounts')
      .find({}, { projection: { deviceIds: 1 } })
      .toArray();
    const existing = new Set(
      (
        await database
          .collection('devices')
          .find({}, { projection: { _id: 1 } })
          .toArray()
      ).map((device) => String(device._id)),
    );
    const dangling = stored.flatMap((account) => account.deviceIds.map(String).filter((id: string) => !existing.has(id)));
    const duplicates = stored.filter((account) => new Set(account.deviceIds.map(String)).size !== account.deviceIds.length).length;
    const overTheLimit = stored.filter((account) => account.deviceIds.length > MAX_DEVICES).length;
    const unexpectedAnswers = Object.fromEntries(
      [...new Set(unexpected)].map((outcome) => [outcome, unexpected.filter((other) => other === outcome).length]),
    );
    const errorLines = instances
      .flatMap((instance) => instance.lines)
      .filter((line) => /"level":"(error|fatal)"/.test(line) && /"stack"/.test(line))
      .map((line) => (JSON.parse(line) as { stack: string }).stack.split('\n')[0]);
    expect({ accounts: stored.length, dangling, duplicates, overTheLimit, unexpectedAnswers, errorLines }).toEqual({
      accounts: accounts.length,
      dangling: [],
      duplicates: 0,
      overTheLimit: 0,
      unexpectedAnswers: {},
      errorLines: [],
    });
    // The limit was reached, and refused, while the mix ran.
    expect(overLimit).toBeGreaterThan(0);

    // Every instance took its share: the instances' own counters add up to what was sent.
    const scrapes = await Promise.all(
      instances.map(async (instance) => parsePrometheus(await (await fetch(`${instance.url}/metrics`)).text())),
    );
    const links = scrapes.map((samples) =>
      total(samples, 'http_requests_total', { method: 'PUT', route: '/api/accounts/:id/devices/rel/:fk' }),
    );
    for (const count of links) expect(count).toBeGreaterThan(0);
    expect(links.reduce((a, b) => a + b, 0)).toBe(
      [...tally].filter(([outcome]) => outcome.startsWith('link ')).reduce((sum, [, n]) => sum + n, 0),
    );
  }, 240_000);
});
