import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import mongoose, { type Connection } from 'mongoose';
import request from 'supertest';
import { type Configuration } from '../src/config/configuration.js';
import { type MongoJavaServer, startMongoJavaServer } from '../src/database/mongo-java-server.js';
import { CommandRecorder } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { expectError } from './support/http.js';
import { freePort, isAlive, runService, type ServiceProcess, stopService, waitUntilReady } from './support/processes.js';
import { postgresUrlOf, sql } from './support/postgres.js';
import { parsePrometheus, select, total } from './support/prometheus.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * The service in operation: its metrics, a database outage, the time limit on every database
 * operation, the process itself (signals, start-up failures, request logs, the container health
 * check), acknowledged writes surviving kill -9, deletions a kill -9 interrupted finished at the
 * next start, and several instances on one database.
 */

const READ_KEY = 'metrics-read-key-01';
const API_KEYS = new Map<string, 'read' | 'write'>([[READ_KEY, 'read']]);

async function scrape(t: TestApp) {
  const res = await request(t.http).get('/metrics').expect(200);
  return parsePrometheus(res.text);
}

describe('GET /metrics', () => {
  let t: TestApp;
  let deviceId: string;

  beforeAll(async () => {
    t = await createTestApp({ config: { metrics: { mode: 'public' } } });
    await t.clear();
    const device = await request(t.http).post('/api/devices').send({ myId: 'metered', deviceUID: 'UID-METERED' }).expect(201);
    deviceId = device.body._id;
  });
  afterAll(() => t.close());

  it('answers in the Prometheus text format, outside /api', async () => {
    const res = await request(t.http).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toContain('# TYPE http_requests_total counter');
    expect(res.text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(() => parsePrometheus(res.text)).not.toThrow();
    await request(t.http).get('/api/metrics').expect(404);
  });

  it('counts requests by method, route pattern and status, never by raw URL', async () => {
    const before = await scrape(t);
    const labels = { method: 'GET', route: '/api/devices/:id', status_code: '200' };
    await request(t.http).get(`/api/devices/${deviceId}`).expect(200);
    await request(t.http).get('/api/devices/metered').expect(200);
    await request(t.http).get('/api/devices/nobody-here').expect(404);
    await request(t.http).get('/api/no/such/route/123').expect(404);
    const after = await scrape(t);

    expect(total(after, 'http_requests_total', labels) - total(before, 'http_requests_total', labels)).toBe(2);
    expect(total(after, 'http_requests_total', { ...labels, status_code: '404' })).toBe(1);
    expect(total(after, 'http_requests_total', { route: '(unmatched)', status_code: '404' })).toBeGreaterThanOrEqual(1);
    const routes = new Set(select(after, 'http_requests_total').map((sample) => sample.labels.route));
    for (const route of routes) expect(route === '(unmatched)' || !/metered|nobody|123|[0-9a-f]{24}/.test(route)).toBe(true);
  });

  it('has request durations as a histogram whose count follows the requests', async () => {
    const labels = { method: 'GET', route: '/api/devices/:id', status_code: '200' };
    await request(t.http).get(`/api/devices/${deviceId}`).expect(200);
    const samples = await scrape(t);
    const buckets = select(samples, 'http_request_duration_seconds_bucket', labels);
    expect(buckets.length).toBeGreaterThan(5);
    const infinite = buckets.find((sample) => sample.labels.le === '+Inf')!;
    expect(infinite.value).toBe(total(samples, 'http_requests_total', labels));
    expect(total(samples, 'http_request_duration_seconds_count', labels)).toBe(infinite.value);
    expect(total(samples, 'http_request_duration_seconds_sum', labels)).toBeGreaterThan(0);
    const counts = buckets.map((sample) => sample.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
  });

  it('times database commands by command and collection', async () => {
    const find = { command: 'find', collection: 'devices', outcome: 'success' };
    const before = total(await scrape(t), 'mongodb_command_duration_seconds_count', find);
    await request(t.http).get(`/api/devices/${deviceId}`).expect(200);
    const after = await scrape(t);
    expect(total(after, 'mongodb_command_duration_seconds_count', find)).toBeGreaterThan(before);
    expect(total(after, 'mongodb_command_duration_seconds_sum', find)).toBeGreaterThan(0);
    expect(select(after, 'mongodb_command_duration_seconds_bucket', { ...find, le: '+Inf' })).toHaveLength(1);
    const inserts = { command: 'insert', collection: 'devices', outcome: 'success' };
    expect(total(after, 'mongodb_command_duration_seconds_count', inserts)).toBeGreaterThanOrEqual(1);
  });

  it('counts a failed database command as a failure', async () => {
    const failed = { command: 'insert', collection: 'devices', outcome: 'failure' };
    const before = total(await scrape(t), 'mongodb_command_duration_seconds_count', failed);
    await request(t.http).post('/api/devices').send({ myId: 'metered', deviceUID: 'UID-OTHER' }).expect(409);
    expect(total(await scrape(t), 'mongodb_command_duration_seconds_count', failed)).toBe(before + 1);
  });

  it('reports the connection pool: open, checked out and available connections, and its size', async () => {
    const samples = await scrape(t);
    const [open] = select(samples, 'mongodb_pool_connections');
    expect(open.labels.server).toMatch(/:\d+$/);
    expect(open.value).toBeGreaterThanOrEqual(1);
    const server = { server: open.labels.server };
    const checkedOut = total(samples, 'mongodb_pool_connections_checked_out', server);
    expect(checkedOut).toBeGreaterThanOrEqual(0);
    expect(total(samples, 'mongodb_pool_connections_available', server)).toBe(open.value - checkedOut);
    expect(total(samples, 'mongodb_pool_checkouts_waiting', server)).toBeGreaterThanOrEqual(0);
    expect(total(samples, 'mongodb_pool_max_size')).toBe(100);
  });

  it('keeps checked-out plus available connections equal to the open ones while requests are in flight', async () => {
    const reads = Array.from({ length: 20 }, () => request(t.http).get('/api/accounts').query({ filter: '{"include":"devices"}' }));
    const during = request(t.http).get('/metrics');
    const [res] = await Promise.all([during, ...reads]);
    const samples = parsePrometheus(res.text);
    const open = total(samples, 'mongodb_pool_connections');
    expect(open).toBeGreaterThanOrEqual(1);
    expect(total(samples, 'mongodb_pool_connections_checked_out') + total(samples, 'mongodb_pool_connections_available')).toBe(open);
  });

  it("includes Node's process metrics", async () => {
    const samples = await scrape(t);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(select(samples, name).length).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('Who may read /metrics (METRICS)', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const app = (metrics: Configuration['metrics'], security: Partial<Configuration['security']> = {}) =>
    createTestApp({ config: { metrics, security } });

  it('off: 404 in the error shape, and no database command timings are kept', async () => {
    t = await app({ mode: 'off' });
    const res = await request(t.http).get('/metrics').expect(404);
    expectError(res, 404);
    expect(res.body.message).toBe('Cannot GET /metrics');
    expect(t.connection.getClient().options.monitorCommands).toBe(false);
  });

  it('key: 401 without a key, 200 with any valid key (a read key will do)', async () => {
    t = await app({ mode: 'key' }, { apiKeys: API_KEYS });
    expectError(await request(t.http).get('/metrics').expect(401), 401);
    await request(t.http).get('/metrics').set('x-api-key', 'not-a-key-0000').expect(401);
    const scraped = await request(t.http).get('/metrics').set('authorization', `Bearer ${READ_KEY}`).expect(200);
    expect(scraped.text).toContain('http_requests_total');
  });

  it('public: open without a key even when the API needs one', async () => {
    t = await app({ mode: 'public' }, { apiKeys: API_KEYS });
    await request(t.http).get('/api/devices').expect(401);
    await request(t.http).get('/metrics').expect(200);
  });

  it('is never rate limited, so a scraper is not turned away by a busy client at its address', async () => {
    t = await app({ mode: 'public' }, { rateLimitMax: 1, rateLimitWindowS: 60 });
    await request(t.http).get('/api/devices').expect(200);
    await request(t.http).get('/api/devices').expect(429);
    for (let i = 0; i < 5; i += 1) await request(t.http).get('/metrics').expect(200);
  });

  it('is not part of the OpenAPI document', async () => {
    t = await app({ mode: 'public' });
    const res = await request(t.http).get('/docs-json').expect(200);
    expect(Object.keys(res.body.paths)).not.toContain('/metrics');
  });
});

const DB_TIMEOUT_MS = 1_500;
/** Generous: the property is "bounded, never hangs", not a speed target. */
const BOUND_MS = 15_000;

describe('Database outage', () => {
  let dir: string;
  let port: number;
  let engine: MongoJavaServer;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-outage-'));
    port = await freePort();
    // A database of the test's own, on disk, so it can be stopped and started again under
    // the running service without losing what was written.
    engine = await startMongoJavaServer({ port, dataFile: join(dir, 'outage.mv') });
    t = await createTestApp({ config: { database: { uri: `mongodb://127.0.0.1:${port}/outage`, timeoutMs: DB_TIMEOUT_MS } } });
  });

  afterAll(async () => {
    await t?.close();
    await engine?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while the database is down, recovers by itself when it returns, and loses no acknowledged write', async () => {
    const acknowledged: string[] = [];
    const write = async (n: number) => {
      const res = await request(t.http)
        .post('/api/devices')
        .send({ myId: `outage-${n}`, deviceUID: `UID-${n}` });
      if (res.status === 201) acknowledged.push(res.body._id);
      return res.status;
    };
    for (let n = 0; n < 10; n += 1) expect(await write(n)).toBe(201);

    // Writes in flight while the engine goes down: each is acknowledged or refused, never 500.
    const inFlight = Array.from({ length: 30 }, (_, i) => write(100 + i));
    await engine.stop();
    const statuses = await Promise.all(inFlight);
    expect(statuses.filter((status) => status !== 201 && status !== 503)).toEqual([]);

    const downAt = Date.now();
    const read = await request(t.http).get('/api/devices');
    const timeTo503 = Date.now() - downAt;
    expectError(read, 503);
    expect(timeTo503).toBeLessThan(BOUND_MS);
    const refusedWrite = await request(t.http).post('/api/devices').send({ myId: 'while-down', deviceUID: 'UID-down' });
    expect(refusedWrite.status).toBe(503);
    const readiness = await request(t.http).get('/health/ready');
    expect(readiness.status).toBe(503);
    expect(readiness.body.details).toEqual([{ path: 'database', code: 'down', message: expect.any(String) }]);
    expect((await request(t.http).get('/health')).status).toBe(200);

    engine = await startMongoJavaServer({ port, dataFile: join(dir, 'outage.mv') });
    const upAt = Date.now();
    const recovered = await eventually(async () => (await request(t.http).get('/api/devices')).status === 200, { timeoutMs: 30_000 });
    const timeToRecover = Date.now() - upAt;
    expect(recovered).toBe(true);
    expect((await request(t.http).get('/health/ready')).status).toBe(200);
    expect(await write(1000)).toBe(201);

    const stored = await t.devices.countDocuments({ _id: { $in: acknowledged } });
    expect(stored).toBe(acknowledged.length);
    console.log(
      `outage: 503 after ${timeTo503} ms (DB_TIMEOUT_MS ${DB_TIMEOUT_MS}); recovered ${timeToRecover} ms after the engine returned; ${acknowledged.length} acknowledged writes, ${stored} stored`,
    );
  });
});

/**
 * DESIGN.md Invariant 4: no request keeps the database busy beyond DB_TIMEOUT_MS. Every command
 * the service sends carries that time limit (`maxTimeMS`), which FerretDB (and MongoDB) enforce
 * in the server: the query is stopped there, not only abandoned by the client. mongo-java-server
 * ignores time limits; there the socket timeout (twice DB_TIMEOUT_MS) ends the request's wait.
 */

const runEngine = process.env.TEST_DATABASE_ENGINE;
const TIME_LIMIT_MS = 1_000;
const SLOW_COUNT_DEVICES = 60_000;
/** Distinct patterns in one filter: below the pattern checker's queue (filter.limits.ts), so only the database is slow. */
const PATTERNS = 90;
const FIELDS = ['deviceUID', 'myId'] as const;
/**
 * A legitimate slow count: 90 case-insensitive patterns on both text fields, none of which
 * matches, over 60,000 devices with long values, and no index that can help.
 */
const branches = Array.from({ length: PATTERNS }, (_, i) => FIELDS.map((field) => ({ field, pattern: `q${i}z` }))).flat();
const slowCount = `/api/devices/count?${branches.map(({ field, pattern }, i) => `where[or][${i}][${field}][ilike]=${pattern}`).join('&')}`;
const slowFilter = { $or: branches.map(({ field, pattern }) => ({ [field]: { $regex: pattern, $options: 'i' } })) };

/** FerretDB's PostgreSQL backends running a statement that started in [from, to] (PostgreSQL's clock), with when it started. */
function runningBetween(postgres: string, from: string, to: string): string[][] {
  return sql(
    postgres,
    `SELECT pid, query_start, left(query, 120) FROM pg_stat_activity
      WHERE application_name = 'FerretDB' AND state = 'active'
        AND query_start BETWEEN '${from}'::timestamptz AND '${to}'::timestamptz`,
  );
}

const postgresNow = (postgres: string) => sql(postgres, 'SELECT clock_timestamp()')[0][0];

describe('Every database operation carries a server-side time limit', () => {
  let t: TestApp;
  let inspector: MongoClient;
  let db: Db;
  let deviceId: string;

  let ownEngine: MongoJavaServer | undefined;

  beforeAll(async () => {
    let uri = process.env.MONGODB_URI!;
    // mongo-java-server runs an abandoned query on to its end, on an I/O thread that some of its
    // connections share: on the run's engine that would hold up other test files for seconds.
    // There these tests get an engine of their own.
    if (runEngine === 'mongo-java-server') {
      ownEngine = await startMongoJavaServer();
      uri = `mongodb://127.0.0.1:${ownEngine.port}/time-limits`;
    }
    inspector = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
    db = inspector.db();
    // The application before the data, so that its indexes are built while the collection is small.
    t = await createTestApp({ config: { database: { uri, timeoutMs: TIME_LIMIT_MS }, metrics: { mode: 'public' } } });
    await t.clear();
    const filler = 'abcdefghij'.repeat(24);
    for (let start = 0; start < SLOW_COUNT_DEVICES; start += 2_000) {
      await db.collection('devices').insertMany(
        Array.from({ length: 2_000 }, (_, i) => ({
          myId: `slow-${start + i}-${filler.slice(0, 100)}`,
          deviceUID: `UID-${start + i}-${filler}`,
          rev: 0,
          createdAt: new Date(),
          updatedAt: new Date(),
        })),
      );
    }
    deviceId = (await db.collection('devices').findOne({ myId: `slow-7-${filler.slice(0, 100)}` }))!._id.toHexString();
  }, 180_000);
  afterAll(async () => {
    await inspector?.close();
    await t?.close();
    await ownEngine?.stop();
  });

  it('sends maxTimeMS with every find, count, aggregate, distinct, insert, update, delete and findAndModify', async () => {
    const recorder = new CommandRecorder(t.connection.getClient());
    try {
      const device = (await request(t.http).post('/api/devices').send({ myId: 'limited-1', deviceUID: 'UID-limited-1' }).expect(201)).body;
      await request(t.http).post('/api/devices').send({ myId: 'limited-2', deviceUID: 'UID-limited-2' }).expect(201);
      const account = (
        await request(t.http)
          .post('/api/accounts')
          .send({ name: 'limited', deviceIds: ['limited-1'] })
          .expect(201)
      ).body;
      const base = `/api/accounts/${account._id}`;
      await request(t.http).get('/api/devices?filter[where][myId][like]=^limited&filter[order]=createdAt DESC').expect(200);
      await request(t.http).get('/api/devices/count?where[myId]=limited-1').expect(200);
      await request(t.http).get('/api/devices/findOne?filter[where][myId]=limited-2').expect(200);
      await request(t.http).patch('/api/devices/limited-2').send({ deviceUID: 'UID-limited-2b' }).expect(200);
      await request(t.http).put(`${base}/devices/rel/limited-2`).expect(200);
      await request(t.http).get(`${base}?include=devices`).expect(200);
      await request(t.http).get(`${base}/devices?filter[limit]=1`).expect(200);
      await request(t.http).get(`${base}/devices/count`).expect(200);
      await request(t.http).head(`${base}/devices/rel/limited-1`).expect(200);
      await request(t.http).get(`/api/devices/${device._id}/accounts`).expect(200);
      await request(t.http).get(`/api/accounts?filter[where][deviceIds]=limited-1`).expect(200);
      await request(t.http).delete(`${base}/devices/rel/limited-2`).expect(204);
      await request(t.http)
        .post(`${base}/devices/rel`)
        .send({ ids: ['limited-2'] })
        .expect(200);
      await request(t.http)
        .put(`${base}/devices/rel`)
        .send({ ids: ['limited-2', 'limited-1'] })
        .expect(200);
      await request(t.http).patch(base).send({ name: 'limited again' }).expect(200);
      await request(t.http).delete('/api/devices/limited-1').expect(200);
      await request(t.http).delete(`${base}/devices`).expect(200);
      await request(t.http).delete(base).expect(200);
      // The sweeper's removal of the two deleted devices, about a second later.
      expect(await eventually(() => recorder.named('delete', 'devices').length > 0)).toBe(true);

      // A getMore continues the find whose limit it shares.
      const bounded = ['find', 'count', 'aggregate', 'distinct', 'insert', 'update', 'delete', 'findAndModify'];
      const sent = recorder.sent.filter((command) => bounded.includes(command.name));
      const names = [...new Set(sent.map((command) => command.name))].sort();
      expect(names).toEqual(['aggregate', 'delete', 'find', 'findAndModify', 'insert', 'update']);
      expect(
        sent.filter((command) => command.body.maxTimeMS !== TIME_LIMIT_MS).map((command) => `${command.name} ${command.collection}`),
      ).toEqual([]);
      console.log(`time limits: ${sent.length} commands (${names.join(', ')}), every one with maxTimeMS ${TIME_LIMIT_MS}`);
    } finally {
      recorder.stop();
    }
  }, 60_000);

  it('answers a count that runs past DB_TIMEOUT_MS with 503 in the error shape, and other requests meanwhile', async () => {
    // The patterns' safety verdicts, cached by a route that checks them and then finds no
    // account (404), so that the count below goes straight to the database.
    await request(t.http)
      .get(`/api/accounts/${new ObjectId().toHexString()}${slowCount.slice('/api'.length)}`)
      .expect(404);
    const recorder = new CommandRecorder(t.connection.getClient());
    try {
      const slow = request(t.http)
        .get(slowCount)
        .then((res) => res);
      expect(
        await eventually(
          () => recorder.named('aggregate', 'devices').some((command) => JSON.stringify(command.body).includes(`q${PATTERNS - 1}z`)),
          { everyMs: 5 },
        ),
      ).toBe(true);
      // Sent while the count runs in the database. The service answers them: where the engine
      // honours time limits, from the database as usual; mongo-java-server goes on counting after
      // the socket timeout, on an I/O thread that some of its connections share, so there a
      // request needing the database may get a 503 in its turn, but none waits on it unanswered.
      const [live, one, accounts, ready] = await Promise.all([
        request(t.http).get('/health'),
        request(t.http).get(`/api/devices/${deviceId}`),
        request(t.http).get('/api/accounts/count'),
        request(t.http).get('/health/ready'),
      ]);
      console.log(
        `time limits, sent while the slow count ran: /health ${live.status}, a device ${one.status}, an account count ${accounts.status}, /health/ready ${ready.status}`,
      );
      expect(live.status).toBe(200);
      if (runEngine === 'mongo-java-server') {
        for (const res of [one, accounts, ready]) {
          if (res.status !== 200) expect(res.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
        }
      } else {
        expect({ one: one.status, myId: one.body.myId, accounts: accounts.body, ready: ready.status }).toEqual({
          one: 200,
          myId: expect.stringMatching(/^slow-7-/),
          accounts: { count: 0 },
          ready: 200,
        });
      }
      const answer = await slow;
      expect(answer.status).toBe(503);
      // FerretDB stopped the query at its maxTimeMS; mongo-java-server ignores it, and the
      // socket timeout ended the wait instead.
      expect(answer.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message:
          runEngine === 'mongo-java-server'
            ? 'The database is unavailable; try again shortly'
            : 'The database did not answer in time; try again shortly',
      });
    } finally {
      recorder.stop();
    }
  }, 60_000);

  if (runEngine === 'ferretdb') {
    it('leaves no PostgreSQL backend running the count after the 503 (FerretDB)', async () => {
      const postgres = await postgresUrlOf(process.env.MONGODB_URI!);
      // The probe sees such a count: without a time limit it runs on in a backend.
      const controlFrom = postgresNow(postgres);
      const unlimited = db.collection('devices').countDocuments(slowFilter);
      expect(
        await eventually(() => runningBetween(postgres, controlFrom, postgresNow(postgres)).length > 0, { timeoutMs: 5_000, everyMs: 50 }),
      ).toBe(true);
      expect(await unlimited).toBe(0);

      const from = postgresNow(postgres);
      await request(t.http).get(slowCount).expect(503);
      const to = postgresNow(postgres);
      const atAnswer = runningBetween(postgres, from, to).length;
      let left: string[][] = [];
      await eventually(() => (left = runningBetween(postgres, from, to)).length === 0, { timeoutMs: 3_000 });
      console.log(`time limits on FerretDB: ${atAnswer} backends still running the count at the 503, ${left.length} a moment later`);
      expect(left).toEqual([]);
    }, 60_000);
  }
});

const STACK_LINE = /^\s+at /;

describe('Graceful shutdown', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-shutdown-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'finishes the requests in flight at %s with 2xx, exits 0 and leaves no JVM behind',
    async (signal) => {
      const port = await freePort();
      const service = runService({ DATA_DIR: join(dir, signal), SHUTDOWN_TIMEOUT_MS: '60000' }, port);
      const engineLine = await service.waitForLine(/JVM pid \d+/);
      const jvm = Number(/JVM pid (\d+)/.exec(engineLine)![1]);
      const uri = /at (mongodb:\/\/[^\s"]+)/.exec(engineLine)![1];
      await waitUntilReady(service);

      // An account with enough devices that reading it with include=devices takes a while on
      // this engine, seeded straight into the service's own embedded database.
      const connection = await mongoose.createConnection(uri).asPromise();
      const ids = Array.from({ length: 600 }, () => new mongoose.Types.ObjectId());
      const now = new Date();
      await connection
        .collection('devices')
        .insertMany(ids.map((_id, n) => ({ _id, myId: `slow-${n}`, deviceUID: `UID-${n}`, createdAt: now, updatedAt: now })));
      const { insertedId } = await connection
        .collection('accounts')
        .insertOne({ name: 'slow', deviceIds: ids, createdAt: now, updatedAt: now });
      await connection.close();

      const inFlight = Array.from({ length: 4 }, () =>
        fetch(`${service.url}/api/accounts/${insertedId.toHexString()}?include=devices`).then(
          async (res) => ({ status: res.status, devices: ((await res.json()) as { devices?: unknown[] }).devices?.length }),
          (error: Error) => ({ status: 0, devices: error.message }),
        ),
      );
      // Long enough for every request to have been accepted, shorter than they take together.
      await new Promise((resolve) => setTimeout(resolve, 400));
      service.child.kill(signal);

      const results = await Promise.all(inFlight);
      expect(results).toEqual(Array.from({ length: 4 }, () => ({ status: 200, devices: 600 })));
      expect(await service.exited).toBe(0);
      expect(isAlive(jvm)).toBe(false);
      console.log(`${signal}: ${results.length} requests in flight completed with 200 during the graceful shutdown`);
    },
    90_000,
  );
});

describe('Start-up failures', () => {
  let blocker: Server;
  let busyPort: number;

  beforeAll(async () => {
    busyPort = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(busyPort, '127.0.0.1', () => resolve()));
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  const external = () => process.env.MONGODB_URI!;

  it.each([
    [
      'the port is in use',
      () => ({ MONGODB_URI: external(), PORT: String(busyPort) }),
      /port \d+ on 127\.0\.0\.1 is already in use: .*set PORT/,
    ],
    [
      'MONGODB_URI is not a MongoDB URI',
      () => ({ MONGODB_URI: 'http://example.org/db' }),
      /Invalid configuration: MONGODB_URI must be a mongodb:\/\//,
    ],
    [
      'MONGODB_URI does not answer',
      () => ({ MONGODB_URI: 'mongodb://127.0.0.1:9/refmany', DB_TIMEOUT_MS: '1000' }),
      /cannot reach the database at MONGODB_URI within 1000 ms .*check MONGODB_URI/,
    ],
    ['a variable is out of range', () => ({ MONGODB_URI: external(), PORT: 'not-a-port' }), /Invalid configuration: .*PORT/],
    [
      'API_KEYS holds keys under 16 characters (bug: r:read,w:write was accepted, and a fuzzer guessed the keys)',
      () => ({ MONGODB_URI: external(), API_KEYS: 'r:read,w:write' }),
      /^refmany could not start: Invalid configuration: API_KEYS: every key must be at least 16 characters long$/,
    ],
    [
      'API_KEYS holds one key under 16 characters beside a long one',
      () => ({ MONGODB_URI: external(), API_KEYS: 'a-long-read-key-0001:read, short-w-key:write' }),
      /^refmany could not start: Invalid configuration: API_KEYS: every key must be at least 16 characters long$/,
    ],
    [
      'no database engine can start',
      () => ({ PATH: '/nonexistent', MONGOMS_RUNTIME_DOWNLOAD: 'false', DATA_DIR: '' }),
      /No database available: set MONGODB_URI .*Java 17\+ and Maven/,
    ],
  ])(
    'exits non-zero with one line saying what to do when %s',
    async (_case, env, expected) => {
      const service = runService(env(), await freePort());
      const code = await service.exited;
      expect(code).not.toBe(0);
      // Informational log lines of a start that got as far as listening may precede it; the
      // failure itself is one line, and nothing is a stack trace.
      const output = service.lines.filter((line) => line.trim() !== '' && !/^\{"level":"info"/.test(line));
      expect(output).toHaveLength(1);
      expect(output[0]).toMatch(/^refmany could not start: /);
      expect(output[0]).toMatch(expected);
      expect(service.lines.some((line) => STACK_LINE.test(line))).toBe(false);
    },
    60_000,
  );
});

describe('API keys of 16 characters or more', () => {
  it('start the service, which then asks for one of them', async () => {
    const service = runService(
      { MONGODB_URI: process.env.MONGODB_URI!, API_KEYS: 'read-key-16-chars:read,write-key-16-char:write' },
      await freePort(),
    );
    try {
      await waitUntilReady(service);
      expect((await fetch(`${service.url}/api/devices`)).status).toBe(401);
      expect((await fetch(`${service.url}/api/devices`, { headers: { 'X-API-Key': 'read-key-16-chars' } })).status).toBe(200);
    } finally {
      await stopService(service);
    }
  }, 60_000);
});

describe('Request logs', () => {
  let service: ServiceProcess;

  beforeAll(async () => {
    service = runService({ MONGODB_URI: process.env.MONGODB_URI! }, await freePort());
    await waitUntilReady(service);
  }, 60_000);
  afterAll(() => stopService(service));

  it('writes one JSON line per request with method, route, status, duration and the request id it echoes', async () => {
    const given = await fetch(`${service.url}/api/devices/some-device-id`, { headers: { 'X-Request-Id': 'trace-42' } });
    expect(given.status).toBe(404);
    expect(given.headers.get('x-request-id')).toBe('trace-42');
    const generated = await fetch(`${service.url}/api/devices`);
    const generatedId = generated.headers.get('x-request-id');
    expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);

    const line = JSON.parse(await service.waitForLine(/"requestId":"trace-42"/, 5_000));
    expect(line).toMatchObject({
      level: 'warn',
      method: 'GET',
      route: '/api/devices/:id',
      url: '/api/devices/some-device-id',
      status: 404,
      requestId: 'trace-42',
    });
    expect(typeof line.durationMs).toBe('number');
    const other = JSON.parse(await service.waitForLine(new RegExp(`"requestId":"${generatedId}"`), 5_000));
    expect(other).toMatchObject({ level: 'info', method: 'GET', route: '/api/devices', status: 200 });
    expect(service.lines.filter((entry) => entry.includes('"requestId":"trace-42"'))).toHaveLength(1);
  });

  it('never logs an API key', async () => {
    await fetch(`${service.url}/api/devices`, { headers: { Authorization: 'Bearer very-secret-key-1', 'X-API-Key': 'very-secret-key-2' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(service.lines.some((line) => line.includes('very-secret-key'))).toBe(false);
  });
});

describe('The container health check (dist/health/healthcheck.js, the Dockerfile HEALTHCHECK)', () => {
  let service: ServiceProcess;
  let port: number;

  const healthcheck = (path: string, env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'health', 'healthcheck.js'), path], {
        env: { PATH: process.env.PATH, ...env },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      child.once('close', (code) => resolve({ code, stderr }));
    });

  beforeAll(async () => {
    port = await freePort();
    // As in the container: listening on every interface, the check reads PORT like the service.
    service = runService({ MONGODB_URI: process.env.MONGODB_URI!, HOST: '0.0.0.0' }, port);
    await waitUntilReady(service);
  }, 60_000);
  afterAll(() => stopService(service));

  it('exits 0 when the service answers /health and /health/ready', async () => {
    expect(await healthcheck('/health', { PORT: String(port), HOST: '0.0.0.0' })).toEqual({ code: 0, stderr: '' });
    expect(await healthcheck('/health/ready', { PORT: String(port), HOST: '0.0.0.0' })).toEqual({ code: 0, stderr: '' });
  });

  it('exits 1 saying why when nothing answers, or the answer is not a 2xx', async () => {
    const nothing = await healthcheck('/health', { PORT: String(await freePort()) });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^healthcheck: http:\/\/127\.0\.0\.1:\d+\/health did not answer/);
    const notFound = await healthcheck('/no-such-route', { PORT: String(port) });
    expect(notFound).toEqual({ code: 1, stderr: expect.stringMatching(/answered 404/) });
  });
});

/**
 * DESIGN.md Invariant 5 on the embedded engine: an acknowledged write survives the service and
 * its JVM killed outright (kill -9), together or the JVM alone, and is there when the service
 * starts again on the same DATA_DIR. The H2 store used to commit about once a second, so such a
 * kill lost the writes of the last second (31 of 200 create-and-links, 4 of 260 creates).
 */

/** Writes in flight at once, and enough of them acknowledged before the kill that it lands mid-load. */
const CONCURRENCY = 8;
const ACKNOWLEDGED_BEFORE_KILL = 80;
/** Bounds the load whatever happens. */
const MAX_REQUESTS = 2_000;

interface Started {
  service: ServiceProcess;
  jvm: number;
  uri: string;
}

async function startOnDataDir(dataDir: string): Promise<Started> {
  // The embedded mongo-java-server on DATA_DIR, as `npm start` runs it; no mongod download probe.
  const service = runService({ DATA_DIR: dataDir, MONGOMS_RUNTIME_DOWNLOAD: 'false' }, await freePort());
  const engineLine = await service.waitForLine(/JVM pid \d+/, 90_000);
  await service.waitForLine(/"msg":"Listening on /, 60_000);
  return { service, jvm: Number(/JVM pid (\d+)/.exec(engineLine)![1]), uri: /at (mongodb:\/\/[^\s"]+)/.exec(engineLine)![1] };
}

async function stopWithJvm({ service, jvm }: Started): Promise<void> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGTERM');
  await service.exited;
  if (isAlive(jvm)) process.kill(jvm, 'SIGKILL');
  await expectGone(jvm);
}

/** Waits for process `pid` to be gone (a killed process takes a moment to exit); fails the test if it stays. */
async function expectGone(pid: number): Promise<void> {
  expect(await eventually(() => !isAlive(pid), { timeoutMs: 10_000, everyMs: 50 })).toBe(true);
}

/**
 * Sends `write(n)` from CONCURRENCY loops until `kill` has run and every loop has seen a failure
 * (the connection gone) or MAX_REQUESTS were sent. `kill` runs once ACKNOWLEDGED_BEFORE_KILL
 * writes were acknowledged, while the others are in flight. Returns the acknowledged results.
 */
async function loadThenKill<T>(write: (n: number) => Promise<T | undefined>, kill: () => void): Promise<T[]> {
  const acknowledged: T[] = [];
  let sent = 0;
  let killed = false;
  const loop = async () => {
    while (sent < MAX_REQUESTS) {
      const result = await write(sent++).catch(() => undefined);
      if (result !== undefined) acknowledged.push(result);
      if (!killed && acknowledged.length >= ACKNOWLEDGED_BEFORE_KILL) {
        killed = true;
        kill();
      }
      if (killed && result === undefined) return;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  expect(killed).toBe(true);
  return acknowledged;
}

async function countStored(uri: string, collection: string, ids: string[]): Promise<number> {
  const connection = await mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000 }).asPromise();
  try {
    return await connection.collection(collection).countDocuments({ _id: { $in: ids.map((id) => new mongoose.Types.ObjectId(id)) } });
  } finally {
    await connection.close();
  }
}

describe('Acknowledged writes on the embedded H2 engine (bug: lost when the JVM was killed)', () => {
  let dir: string;
  const running: Started[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-durability-'));
  });
  afterAll(async () => {
    await Promise.all(running.map(stopWithJvm));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged create-and-link when the service and its JVM are killed together (kill -9)', async () => {
    const dataDir = join(dir, 'together');
    const first = await startOnDataDir(dataDir);
    running.push(first);
    const account = await fetch(`${first.service.url}/api/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'durable' }),
    }).then((response) => response.json() as Promise<{ _id: string }>);

    const acknowledged = await loadThenKill(
      async (n) => {
        const response = await fetch(`${first.service.url}/api/accounts/${account._id}/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ myId: `durable-${n}`, deviceUID: `UID-durable-${n}` }),
        });
        return response.status === 201 ? ((await response.json()) as { _id: string })._id : undefined;
      },
      () => {
        process.kill(first.service.child.pid!, 'SIGKILL');
        process.kill(first.jvm, 'SIGKILL');
      },
    );
    await first.service.exited;
    await expectGone(first.jvm);

    const second = await startOnDataDir(dataDir);
    running.push(second);
    const stored = await countStored(second.uri, 'devices', acknowledged);
    const linked = await fetch(`${second.service.url}/api/accounts/${account._id}`)
      .then((response) => response.json() as Promise<{ deviceIds: string[] }>)
      .then(({ deviceIds }) => acknowledged.filter((id) => deviceIds.includes(id)).length);
    console.log(
      `kill -9 of service and JVM: ${acknowledged.length} create-and-links acknowledged, ${stored} devices stored, ${linked} linked after the restart`,
    );
    expect({ acknowledged: acknowledged.length, stored, linked }).toEqual({
      acknowledged: acknowledged.length,
      stored: acknowledged.length,
      linked: acknowledged.length,
    });
  }, 240_000);

  it('keeps every acknowledged create when the JVM alone is killed (kill -9)', async () => {
    const dataDir = join(dir, 'engine');
    const first = await startOnDataDir(dataDir);
    running.push(first);

    const acknowledged = await loadThenKill(
      async (n) => {
        const response = await fetch(`${first.service.url}/api/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ myId: `engine-${n}`, deviceUID: `UID-engine-${n}` }),
        });
        // Once the engine is gone the service answers 503: not acknowledged, and the loop ends.
        return response.status === 201 ? ((await response.json()) as { _id: string })._id : undefined;
      },
      () => process.kill(first.jvm, 'SIGKILL'),
    );
    await stopWithJvm(first);

    const second = await startOnDataDir(dataDir);
    running.push(second);
    const stored = await countStored(second.uri, 'devices', acknowledged);
    console.log(`kill -9 of the JVM alone: ${acknowledged.length} creates acknowledged, ${stored} stored after the restart`);
    expect(stored).toBe(acknowledged.length);
  }, 240_000);
});

/**
 * DESIGN.md Invariant 1 when the process dies: the service (dist/main.js, on the test's
 * database) is killed with SIGKILL while it deletes devices, several times, and started again.
 * A deletion is mark, pull, remove (src/relations/references-many.ts); whatever step a kill
 * interrupts, the next start finishes it before the service listens, so no account keeps the
 * id of a device that is gone or being deleted, and no device is left half deleted.
 */

const ROUNDS = 4;
const DEVICES = 240;
const ACCOUNTS = 80;
/** Each device is referenced by this many accounts (DEVICES × SHARED / ACCOUNTS = 12 ids per account). */
const SHARED = 4;
const CONCURRENT_DELETES = 8;
/** Deletions acknowledged in a round before the kill, so that it lands while others are in flight. */
const DELETES_BEFORE_KILL = 20;
/** Every this many requests, one is an account's delete-all instead of a single device. */
const DELETE_ALL_EVERY = 15;
const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

interface Device {
  _id: ObjectId;
  myId: string;
  deviceUID: string;
}

interface Round {
  round: number;
  acknowledged: number;
  inFlightAtKill: number;
  /** Devices marked when the process died: deletions it began and had not finished. */
  markedAtKill: number;
  /** Ids still in accounts that named a marked device: deletions killed between mark and pull. */
  referencesToMarkedAtKill: number;
  /** What the next start-up said it finished. */
  finishedAtStart: number;
}

/** The ids each account references, as seeded: device j is in accounts j, j+20, j+40 and j+60 (mod 80), in device order. */
function seededLists(devices: Device[]): ObjectId[][] {
  const lists: ObjectId[][] = Array.from({ length: ACCOUNTS }, () => []);
  devices.forEach((device, j) => {
    for (let k = 0; k < SHARED; k += 1) lists[(j + (k * ACCOUNTS) / SHARED) % ACCOUNTS].push(device._id);
  });
  for (const list of lists) list.sort((a, b) => a.toHexString().localeCompare(b.toHexString()));
  return lists;
}

async function startService(): Promise<ServiceProcess> {
  const service = runService({ MONGODB_URI: process.env.MONGODB_URI, RATE_LIMIT_MAX: '0', LOG_LEVEL: 'info' }, await freePort());
  await waitUntilReady(service, 90_000);
  return service;
}

/**
 * The count the start-up's sweep logged ("Finished n unfinished Device deletions"); it logs
 * nothing when there were none. Log lines are written in batches, so the line may come a little
 * after the service is ready.
 */
async function finishedAtStart(service: ServiceProcess, expected: number): Promise<number> {
  if (expected === 0) return service.lines.some((text) => /unfinished Device deletion/.test(text)) ? -1 : 0;
  const line = await service.waitForLine(/Finished \d+ unfinished Device deletion/, 15_000);
  return Number(/Finished (\d+)/.exec(line)![1]);
}

describe('A crash mid-delete leaves no dangling id', () => {
  let client: MongoClient;
  let db: Db;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    client = await MongoClient.connect(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 });
    db = client.db();
  });
  afterAll(async () => {
    if (service) await stopService(service);
    await client.close();
  });

  /** Ids in accounts that name no live device (gone, or marked for deletion). */
  async function danglingReferences(): Promise<number> {
    const live = new Set(
      (
        await db
          .collection('devices')
          .find({ deletingSince: { $exists: false } }, { projection: { _id: 1 } })
          .toArray()
      ).map((device) => device._id.toHexString()),
    );
    const accounts = await db
      .collection<{ deviceIds: ObjectId[] }>('accounts')
      .find({}, { projection: { deviceIds: 1 } })
      .toArray();
    return accounts.flatMap((account) => account.deviceIds).filter((id) => !live.has(id.toHexString())).length;
  }

  it(`finishes every deletion a kill -9 interrupted, over ${ROUNDS} rounds of concurrent DELETEs`, async () => {
    await Promise.all([db.collection('devices').deleteMany({}), db.collection('accounts').deleteMany({})]);
    const now = new Date();
    const devices: Device[] = Array.from({ length: DEVICES }, (_, j) => ({
      _id: new ObjectId(),
      myId: `crash-${j}`,
      deviceUID: `UID-crash-${j}`,
    }));
    await db.collection('devices').insertMany(devices.map((device) => ({ ...device, rev: 0, createdAt: now, updatedAt: now })));
    const lists = seededLists(devices);
    const accountIds = lists.map(() => new ObjectId());
    await db
      .collection('accounts')
      .insertMany(
        lists.map((deviceIds, i) => ({ _id: accountIds[i], name: `crash-${i}`, deviceIds, rev: 0, createdAt: now, updatedAt: now })),
      );

    // Requests in a fixed shuffled order, each sent once across the rounds.
    const order = devices.map((_, j) => (j * 7) % DEVICES);
    let nextDevice = 0;
    let nextAccount = 0;
    const acknowledged = new Set<string>();
    const statuses = new Map<number, number>();
    const unexpected: string[] = [];
    const rounds: Round[] = [];

    service = await startService();
    for (let round = 1; round <= ROUNDS; round += 1) {
      const running = service;
      let acks = 0;
      let inFlight = 0;
      let inFlightAtKill = -1;
      const kill = () => {
        inFlightAtKill = inFlight;
        running.child.kill('SIGKILL');
      };
      const send = async (n: number): Promise<boolean> => {
        const deleteAll = n % DELETE_ALL_EVERY === DELETE_ALL_EVERY - 1 && nextAccount < ACCOUNTS;
        const path = deleteAll
          ? `/api/accounts/${accountIds[nextAccount++].toHexString()}/devices`
          : (() => {
              const device = devices[order[nextDevice++]];
              // Half by ObjectId, half by myId: both paths of DELETE /api/devices/:id.
              return `/api/devices/${n % 2 === 0 ? device._id.toHexString() : device.myId}`;
            })();
        inFlight += 1;
        let response: Response;
        try {
          response = await fetch(`${running.url}${path}`, { method: 'DELETE' });
        } catch (error) {
          if (inFlightAtKill < 0) throw error;
          return false; // the connection died with the process: not acknowledged
        } finally {
          inFlight -= 1;
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const body = (await response.json()) as { count?: number };
        if (response.status === 200) {
          acks += 1;
          if (!deleteAll) acknowledged.add(path.slice('/api/devices/'.length));
        }
        // Answered: deleted, already gone (another path deleted it), or the database busy; never a 500.
        if (![200, 404, 503].includes(response.status) || (response.status === 200) !== (typeof body.count === 'number'))
          unexpected.push(`${path}: ${response.status} ${JSON.stringify(body)}`);
        return true;
      };
      let sent = 0;
      const loop = async () => {
        while (nextDevice < DEVICES && (await send(sent++))) {
          if (inFlightAtKill < 0 && acks >= DELETES_BEFORE_KILL) kill();
        }
      };
      await Promise.all(Array.from({ length: CONCURRENT_DELETES }, loop));
      if (inFlightAtKill < 0) kill();
      await running.exited;

      // A command the killed process sent may still commit after it died (FerretDB finishes a
      // statement whose client is gone): the count is taken once it has stopped changing.
      const countMarked = () => db.collection('devices').countDocuments({ deletingSince: { $exists: true } });
      let markedAtKill = await countMarked();
      for (let tries = 0; tries < 20; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const again = await countMarked();
        if (again === markedAtKill) break;
        markedAtKill = again;
      }
      const referencesToMarkedAtKill = await danglingReferences();
      service = await startService();
      // The start-up sweep ran before the service listened: nothing is left half done.
      expect({ round, marked: await db.collection('devices').countDocuments({ deletingSince: { $exists: true } }) }).toEqual({
        round,
        marked: 0,
      });
      expect({ round, dangling: await danglingReferences() }).toEqual({ round, dangling: 0 });
      rounds.push({
        round,
        acknowledged: acks,
        inFlightAtKill,
        markedAtKill,
        referencesToMarkedAtKill,
        finishedAtStart: await finishedAtStart(service, markedAtKill),
      });
    }

    console.log(
      [
        `crash mid-delete, ${DEVICES} devices in ${ACCOUNTS} accounts (${SHARED} accounts each), ${CONCURRENT_DELETES} concurrent DELETEs, kill -9 per round:`,
        ...rounds.map(
          (r) =>
            `  round ${r.round}: ${r.acknowledged} deletions acknowledged, ${r.inFlightAtKill} requests in flight at the kill, ` +
            `${r.markedAtKill} devices left marked (${r.referencesToMarkedAtKill} ids of them still in accounts), ${r.finishedAtStart} finished by the next start-up`,
        ),
        `  statuses: ${[...statuses].map(([status, count]) => `${count} × ${status}`).join(', ')}`,
      ].join('\n'),
    );
    expect(unexpected).toEqual([]);
    for (const r of rounds) {
      expect(r.inFlightAtKill).toBeGreaterThan(0);
      // The start-up finished exactly the deletions the kill left.
      expect(r.finishedAtStart).toBe(r.markedAtKill);
    }
    // The kills did interrupt deletions: otherwise this test would prove nothing.
    expect(rounds.reduce((sum, r) => sum + r.markedAtKill, 0)).toBeGreaterThan(0);

    // Every device is fully there (its own myId and deviceUID, unmarked) or gone everywhere.
    const stored = new Map(
      (
        await db
          .collection<Device & { deletingSince?: Date }>('devices')
          .find({}, { projection: { myId: 1, deviceUID: 1, deletingSince: 1 } })
          .toArray()
      ).map((device) => [device._id.toHexString(), device]),
    );
    const survivors = devices.filter((device) => stored.has(device._id.toHexString()));
    const gone = devices.filter((device) => !stored.has(device._id.toHexString()));
    expect(survivors.map((device) => stored.get(device._id.toHexString()))).toEqual(survivors.map((device) => ({ ...device })));
    expect(gone.length).toBeGreaterThanOrEqual(acknowledged.size);
    // An acknowledged deletion is never undone.
    expect(
      devices
        .filter((device) => acknowledged.has(device._id.toHexString()) || acknowledged.has(device.myId))
        .filter((device) => stored.has(device._id.toHexString())),
    ).toEqual([]);
    // Each account holds exactly its seeded ids of the devices that survived, in the seeded order.
    const alive = new Set(survivors.map((device) => device._id.toHexString()));
    const accounts = await db
      .collection<{ _id: ObjectId; deviceIds: ObjectId[] }>('accounts')
      .find({}, { projection: { deviceIds: 1 } })
      .toArray();
    expect(accounts).toHaveLength(ACCOUNTS);
    const byId = new Map(accounts.map((account) => [account._id.toHexString(), account.deviceIds.map((id) => id.toHexString())]));
    expect(accountIds.map((id) => byId.get(id.toHexString()))).toEqual(
      lists.map((list) => list.map((id) => id.toHexString()).filter((id) => alive.has(id))),
    );

    // Through the API: the deleted devices are 404, the others there.
    const answers = await Promise.all(
      devices.map((device) => fetch(`${service!.url}/api/devices/${device._id.toHexString()}`).then((res) => res.status)),
    );
    expect(answers).toEqual(devices.map((device) => (alive.has(device._id.toHexString()) ? 200 : 404)));
    await stopService(service);
    service = undefined;

    // `npm run integrity` finds nothing to repair.
    const integrity = spawnSync(process.execPath, [join(ROOT, 'dist', 'integrity', 'main.js'), '--json'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MONGODB_URI: process.env.MONGODB_URI, LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    expect(integrity.status).toBe(0);
    const report = JSON.parse(integrity.stdout) as { accountsScanned: number; devicesScanned: number; damaged: unknown[] };
    expect(report).toMatchObject({ accountsScanned: ACCOUNTS, devicesScanned: survivors.length, damaged: [] });
    console.log(
      `after the last restart: ${gone.length} devices gone (${acknowledged.size} of them acknowledged), ${survivors.length} intact, 0 dangling ids; integrity: no damage`,
    );
  }, 300_000);
});

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
