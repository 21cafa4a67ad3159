import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { type Configuration } from '../src/config/configuration.js';
import { parsePrometheus, select, total } from './support/prometheus.js';
import { createTestApp, type TestApp } from './support/test-app.js';

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
    expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Cannot GET /metrics' });
    expect(t.connection.getClient().options.monitorCommands).toBe(false);
  });

  it('key: 401 without a key, 200 with any valid key (a read key will do)', async () => {
    t = await app({ mode: 'key' }, { apiKeys: API_KEYS });
    const res = await request(t.http).get('/metrics').expect(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
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
