import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { STATUS_CODES } from 'node:http';
import request, { type Response } from 'supertest';
import { coreShare, engineProcesses } from './support/engine-load.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const READ_KEY = 'r-key-123456';
const WRITE_KEY = 'w-key-123456';
const API_KEYS = new Map<string, 'read' | 'write'>([
  [READ_KEY, 'read'],
  [WRITE_KEY, 'write'],
]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STACK_FRAME = '    at ';

/** The DESIGN.md error shape, nothing more, and no stack trace anywhere in the body. */
function expectErrorShape(res: Response, status: number): void {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ statusCode: status, error: STATUS_CODES[status], message: expect.any(String) });
  for (const key of Object.keys(res.body)) expect(['statusCode', 'error', 'message', 'details']).toContain(key);
  expect(res.text).not.toContain(STACK_FRAME);
}

/** Everything stored, to prove a refused request changed nothing. */
async function snapshot(t: TestApp) {
  const [devices, accounts] = await Promise.all([t.devices.find().sort({ _id: 1 }).lean(), t.accounts.find().sort({ _id: 1 }).lean()]);
  return JSON.parse(JSON.stringify({ devices, accounts }));
}

describe('API keys', () => {
  let t: TestApp;
  let accountId: string;
  let deviceId: string;

  beforeAll(async () => {
    t = await createTestApp({ config: { security: { apiKeys: API_KEYS } } });
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    const device = await t.devices.create({ myId: 'seed-device', deviceUID: 'UID-SEED' });
    const account = await t.accounts.create({ name: 'seed-account', deviceIds: [device._id] });
    deviceId = String(device._id);
    accountId = String(account._id);
  });

  describe('without a valid key', () => {
    it('answers 401 with WWW-Authenticate and the error shape when no key is sent', async () => {
      const res = await request(t.http).get('/api/devices');
      expectErrorShape(res, 401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it.each([
      ['an unknown bearer key', { authorization: 'Bearer not-a-key-000' }],
      ['an unknown X-API-Key', { 'x-api-key': 'not-a-key-000' }],
      ['a prefix of a valid key', { 'x-api-key': READ_KEY.slice(0, -1) }],
      ['a valid key with a suffix', { authorization: `Bearer ${WRITE_KEY}x` }],
    ])('answers 401 for %s', async (_case, headers) => {
      const res = await request(t.http).get('/api/devices').set(headers);
      expectErrorShape(res, 401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('answers 401 to a write without a key and writes nothing', async () => {
      const before = await snapshot(t);
      const res = await request(t.http).post('/api/devices').send({ myId: 'no-key', deviceUID: 'UID-NO-KEY' });
      expectErrorShape(res, 401);
      expect(await snapshot(t)).toEqual(before);
    });
  });

  describe('a read key', () => {
    it.each([
      ['Authorization: Bearer', { authorization: `Bearer ${READ_KEY}` }],
      ['X-API-Key', { 'x-api-key': READ_KEY }],
    ])('reads with %s', async (_case, headers) => {
      const list = await request(t.http).get('/api/devices').set(headers).expect(200);
      expect(list.body.map((device: { myId: string }) => device.myId)).toEqual(['seed-device']);
      const account = await request(t.http).get(`/api/accounts/${accountId}`).set(headers).expect(200);
      expect(account.body.deviceIds).toEqual([deviceId]);
      await request(t.http).head(`/api/devices/${deviceId}`).set(headers).expect(200);
    });

    const writes: Array<[string, 'post' | 'patch' | 'put' | 'delete', (accountId: string) => string, object | undefined]> = [
      ['POST /api/devices', 'post', () => '/api/devices', { myId: 'new-device', deviceUID: 'UID-NEW' }],
      ['PATCH /api/devices/:id', 'patch', () => '/api/devices/seed-device', { deviceUID: 'UID-CHANGED' }],
      ['PUT /api/devices/:id', 'put', () => '/api/devices/seed-device', { myId: 'seed-device', deviceUID: 'UID-CHANGED' }],
      ['DELETE /api/devices/:id', 'delete', () => '/api/devices/seed-device', undefined],
      ['POST /api/accounts', 'post', () => '/api/accounts', { name: 'new-account' }],
      ['PATCH /api/accounts/:id', 'patch', (id) => `/api/accounts/${id}`, { name: 'changed' }],
      ['PUT /api/accounts/:id', 'put', (id) => `/api/accounts/${id}`, { name: 'replaced' }],
      ['DELETE /api/accounts/:id', 'delete', (id) => `/api/accounts/${id}`, undefined],
      ['POST /api/accounts/:id/devices', 'post', (id) => `/api/accounts/${id}/devices`, { myId: 'linked-new', deviceUID: 'UID-LN' }],
      ['DELETE /api/accounts/:id/devices/rel/:fk', 'delete', (id) => `/api/accounts/${id}/devices/rel/seed-device`, undefined],
      ['DELETE /api/accounts/:id/devices', 'delete', (id) => `/api/accounts/${id}/devices`, undefined],
    ];

    it.each(writes)('answers 403 to %s, and nothing is written', async (_route, method, path, body) => {
      const before = await snapshot(t);
      for (const headers of [{ authorization: `Bearer ${READ_KEY}` }, { 'x-api-key': READ_KEY }]) {
        const req = request(t.http)[method](path(accountId)).set(headers);
        const res = body === undefined ? await req : await req.send(body);
        expectErrorShape(res, 403);
      }
      expect(await snapshot(t)).toEqual(before);
    });
  });

  describe('a write key', () => {
    it.each([
      ['Authorization: Bearer', { authorization: `Bearer ${WRITE_KEY}` }],
      ['X-API-Key', { 'x-api-key': WRITE_KEY }],
    ])('creates, changes and deletes with %s', async (_case, headers) => {
      const created = await request(t.http).post('/api/devices').set(headers).send({ myId: 'written', deviceUID: 'UID-W' }).expect(201);
      await request(t.http).patch('/api/devices/written').set(headers).send({ deviceUID: 'UID-W2' }).expect(200);
      await request(t.http).put('/api/devices/written').set(headers).send({ myId: 'written', deviceUID: 'UID-W3' }).expect(200);
      expect((await t.devices.findById(created.body._id).lean())?.deviceUID).toBe('UID-W3');

      const account = await request(t.http)
        .post('/api/accounts')
        .set(headers)
        .send({ name: 'by-writer', deviceIds: ['written'] })
        .expect(201);
      await request(t.http).patch(`/api/accounts/${account.body._id}`).set(headers).send({ name: 'renamed' }).expect(200);
      expect((await t.accounts.findById(account.body._id).lean())?.name).toBe('renamed');

      await request(t.http).delete('/api/devices/written').set(headers).expect(200);
      expect(await t.devices.exists({ _id: created.body._id })).toBeNull();
      expect((await t.accounts.findById(account.body._id).lean())?.deviceIds).toEqual([]);
    });

    it('also reads', async () => {
      const res = await request(t.http).get('/api/accounts/count').set('x-api-key', WRITE_KEY).expect(200);
      expect(res.body).toEqual({ count: 1 });
    });
  });

  describe('routes open without a key', () => {
    it('answers /health and /health/ready', async () => {
      expect((await request(t.http).get('/health').expect(200)).body).toEqual({ status: 'ok' });
      const ready = await request(t.http).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({ status: 'ok', database: { status: 'up' } });
    });

    it('serves Swagger UI at /docs', async () => {
      const res = await request(t.http).get('/docs').redirects(2).expect(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.text).toContain('swagger');
    });

    it('serves the OpenAPI document at /docs-json, declaring the bearer and api-key schemes', async () => {
      const res = await request(t.http).get('/docs-json').expect(200);
      expect(res.body.components.securitySchemes).toMatchObject({
        bearer: { type: 'http', scheme: 'bearer' },
        'api-key': { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      });
      expect(res.body.security).toEqual(expect.arrayContaining([{ bearer: [] }, { 'api-key': [] }]));
    });
  });
});

describe('Without API keys configured', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ config: { security: { apiKeys: undefined }, http: { corsOrigins: undefined } } });
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  it('reads and writes without a key', async () => {
    const device = await request(t.http).post('/api/devices').send({ myId: 'open', deviceUID: 'UID-OPEN' }).expect(201);
    await request(t.http).get('/api/devices').expect(200);
    await request(t.http).patch('/api/devices/open').send({ deviceUID: 'UID-OPEN-2' }).expect(200);
    await request(t.http).delete(`/api/devices/${device.body._id}`).expect(200);
    expect(await t.devices.countDocuments()).toBe(0);
  });

  it('ignores a key that is sent anyway', async () => {
    await request(t.http).get('/api/devices').set('x-api-key', 'whatever-0000').expect(200);
  });

  it('never rate limits with rateLimitMax 0: 30 requests in a row all answer 200', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i += 1) statuses.push((await request(t.http).get('/api/devices/count')).status);
    expect(statuses).toEqual(Array(30).fill(200));
  });

  describe('Helmet', () => {
    it.each(['/api/devices', '/api/devices/nobody', '/health'])('sets the security headers on %s and no X-Powered-By', async (path) => {
      const res = await request(t.http).get(path);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toMatch(/^(SAMEORIGIN|DENY)$/);
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers).not.toHaveProperty('x-powered-by');
    });
  });

  describe('CORS (off by default)', () => {
    it('sends no Access-Control-Allow-Origin to a cross-origin GET', async () => {
      const res = await request(t.http).get('/api/devices').set('origin', 'http://allowed.example').expect(200);
      expect(res.headers).not.toHaveProperty('access-control-allow-origin');
      expect(res.headers).not.toHaveProperty('access-control-expose-headers');
    });

    it('does not answer a preflight with allow headers', async () => {
      const res = await request(t.http)
        .options('/api/devices')
        .set('origin', 'http://allowed.example')
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'content-type,x-api-key');
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.headers).not.toHaveProperty('access-control-allow-origin');
      expect(res.headers).not.toHaveProperty('access-control-allow-methods');
      expect(res.headers).not.toHaveProperty('access-control-allow-headers');
    });
  });

  describe('X-Request-Id', () => {
    it('echoes a safe id the client sent', async () => {
      const res = await request(t.http).get('/api/devices').set('x-request-id', 'client-req.42:abc_DEF').expect(200);
      expect(res.headers['x-request-id']).toBe('client-req.42:abc_DEF');
    });

    it('echoes the id on error responses too', async () => {
      const res = await request(t.http).get('/api/devices/nobody').set('x-request-id', 'trace-404');
      expectErrorShape(res, 404);
      expect(res.headers['x-request-id']).toBe('trace-404');
    });

    it('generates an id when none is sent, a new one per request', async () => {
      const first = await request(t.http).get('/api/devices').expect(200);
      const second = await request(t.http).get('/api/devices').expect(200);
      expect(first.headers['x-request-id']).toMatch(UUID);
      expect(second.headers['x-request-id']).toMatch(UUID);
      expect(second.headers['x-request-id']).not.toBe(first.headers['x-request-id']);
    });

    it.each([
      ['one with spaces', 'has spaces in it'],
      ['one of 200 characters', 'a'.repeat(200)],
      ['one with markup', '<script>alert(1)</script>'],
      ['one with a quote and semicolon', 'id";drop'],
    ])('replaces an unsafe id: %s', async (_case, offered) => {
      const res = await request(t.http).get('/api/devices').set('x-request-id', offered).expect(200);
      expect(res.headers['x-request-id']).not.toBe(offered);
      expect(res.headers['x-request-id']).toMatch(UUID);
    });
  });

  describe('error bodies', () => {
    it('never carry a stack trace, for any of several 4xx', async () => {
      const responses = await Promise.all([
        request(t.http).post('/api/devices').set('content-type', 'application/json').send('{"myId":'),
        request(t.http).post('/api/devices').send({ myId: 'has space', deviceUID: 'u' }),
        request(t.http).get('/api/devices/0123456789abcdef01234567'),
        request(t.http).get(`/api/accounts/${encodeURIComponent('not-an-id')}`),
        request(t.http).get('/api/accounts').query({ filter: '{"where":{"$where":"1"}}' }),
        request(t.http).get('/api/accounts').query({ filter: '{not json' }),
        request(t.http).get('/api/no-such-route'),
        request(t.http).post('/api/accounts').set('content-type', 'text/plain').send('name=x'),
      ]);
      expect(responses.map((res) => res.status)).toEqual([400, 400, 404, 400, 400, 400, 404, expect.any(Number)]);
      for (const res of responses) {
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expectErrorShape(res, res.status);
        expect(res.body).not.toHaveProperty('stack');
      }
    });
  });
});

describe('CORS with allowed origins, and the body limit', () => {
  const ALLOWED = 'http://allowed.example';
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ config: { http: { corsOrigins: [ALLOWED], bodyLimitBytes: 2048 } } });
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  describe('CORS', () => {
    it('allows a configured origin and exposes X-Total-Count', async () => {
      const res = await request(t.http).get('/api/devices').set('origin', ALLOWED).expect(200);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
      const exposed = String(res.headers['access-control-expose-headers'])
        .toLowerCase()
        .split(/\s*,\s*/);
      expect(exposed).toContain('x-total-count');
    });

    it('answers a preflight from a configured origin with the methods and headers it allows', async () => {
      const res = await request(t.http)
        .options('/api/devices')
        .set('origin', ALLOWED)
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'content-type,x-api-key');
      expect(res.status).toBeLessThan(300);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
      expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('x-api-key');
    });

    it('sends nothing to another origin', async () => {
      const res = await request(t.http).get('/api/devices').set('origin', 'http://evil.example').expect(200);
      expect(res.headers).not.toHaveProperty('access-control-allow-origin');
    });
  });

  describe('body limit (2048 bytes)', () => {
    it('answers 413 in the error shape to a 4 KB JSON body and writes nothing', async () => {
      const body = JSON.stringify({ myId: 'too-big', deviceUID: 'x'.repeat(4096) });
      expect(Buffer.byteLength(body)).toBeGreaterThan(4096);
      const res = await request(t.http).post('/api/devices').set('content-type', 'application/json').send(body);
      expectErrorShape(res, 413);
      expect(await t.devices.countDocuments()).toBe(0);
    });

    it('answers 413 to a 4 KB account body and writes nothing', async () => {
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'n', deviceIds: Array.from({ length: 300 }, (_, i) => `dev-${i}`) });
      expectErrorShape(res, 413);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('still accepts a small body', async () => {
      await request(t.http).post('/api/devices').send({ myId: 'small', deviceUID: 'UID-SMALL' }).expect(201);
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });
});

describe('Rate limit (5 per 60 s)', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await createTestApp({ config: { security: { rateLimitMax: 5, rateLimitWindowS: 60 } } });
    await t.clear();
  });
  afterEach(() => t.close());

  it('answers the 6th request with 429, Retry-After in whole seconds and the error shape', async () => {
    for (let i = 0; i < 5; i += 1) await request(t.http).get('/api/devices').expect(200);
    const res = await request(t.http).get('/api/devices');
    expectErrorShape(res, 429);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);

    const write = await request(t.http).post('/api/devices').send({ myId: 'limited', deviceUID: 'UID-LIMITED' });
    expectErrorShape(write, 429);
    expect(await t.devices.countDocuments()).toBe(0);
  });

  it('does not count or limit /health', async () => {
    for (let i = 0; i < 20; i += 1) await request(t.http).get('/health').expect(200);
    for (let i = 0; i < 5; i += 1) await request(t.http).get('/api/devices/count').expect(200);
    await request(t.http).get('/api/devices/count').expect(429);
    for (let i = 0; i < 10; i += 1) await request(t.http).get('/health').expect(200);
    await request(t.http).get('/health/ready').expect(200);
  });
});

describe('Hostile requests that could pin the database or the event loop', () => {
  const EXPONENTIAL = '((a+)+)+$';
  const COUNTED = '(.*){1,32000}[bc]';
  const DOOR = 'Garage door opener - north side';
  const json = (value: unknown) => encodeURIComponent(JSON.stringify(value));
  // On main these requests ran until the request timeout (30 s): give up sooner, so the test fails instead of hanging.
  const CLIENT_TIMEOUT_MS = 15_000;
  let t: TestApp;
  let accountId: string;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    const device = await t.devices.create({ myId: 'north-door', deviceUID: DOOR });
    // The issue's text: 32 times "a" then "!", against which ((a+)+)+$ backtracks 2^32 ways.
    const account = await t.accounts.create({ name: `${'a'.repeat(32)}!`, deviceIds: [device._id] });
    accountId = String(account._id);
  });

  describe('patterns (bug: ReDoS; ((a+)+)+$ answered 503 after 30 s and left the engine busy for minutes)', () => {
    const cases: Array<[string, string, () => string]> = [
      ['where.name.like', 'the account count', () => `/api/accounts/count?where=${json({ name: { like: EXPONENTIAL } })}`],
      ['filter.where.name.like', 'the account list', () => `/api/accounts?filter=${json({ where: { name: { like: EXPONENTIAL } } })}`],
      [
        'filter.where.name.ilike',
        'the account list in bracket form',
        () => `/api/accounts?filter[where][name][ilike]=${encodeURIComponent(EXPONENTIAL)}`,
      ],
      ['filter.where.deviceUID.like', 'the device list', () => `/api/devices?filter=${json({ where: { deviceUID: { like: COUNTED } } })}`],
      [
        'filter.where.deviceUID.regexp',
        'the device list in bracket form, as a /literal/',
        () => `/api/devices?filter[where][deviceUID][regexp]=${encodeURIComponent(`/${COUNTED}/i`)}`,
      ],
      [
        'where.deviceUID.nlike',
        'the device count in bracket form',
        () => `/api/devices/count?where[deviceUID][nlike]=${encodeURIComponent(COUNTED)}`,
      ],
      ['filter.where.myId.nilike', 'findOne', () => `/api/devices/findOne?filter=${json({ where: { myId: { nilike: '(a|a)*$' } } })}`],
      [
        'filter.include.scope.where.deviceUID.like',
        'an include scope',
        () =>
          `/api/accounts/${accountId}?filter=${json({ include: { relation: 'devices', scope: { where: { deviceUID: { like: COUNTED } } } } })}`,
      ],
      [
        'filter.where.deviceUID.like',
        "the relation's device list",
        () => `/api/accounts/${accountId}/devices?filter=${json({ where: { deviceUID: { like: COUNTED } } })}`,
      ],
      [
        'where.deviceUID.like',
        "the relation's device count",
        () => `/api/accounts/${accountId}/devices/count?where=${json({ deviceUID: { like: COUNTED } })}`,
      ],
      [
        'filter.where.name.like',
        'the reverse lookup',
        () => `/api/devices/north-door/accounts?filter=${json({ where: { name: { like: EXPONENTIAL } } })}`,
      ],
    ];

    it.each(cases)('answers 400 unsafe_pattern naming %s on %s', async (path, _route, url) => {
      const res = await request(t.http).get(url()).timeout(CLIENT_TIMEOUT_MS);
      expectErrorShape(res, 400);
      expect(res.body.details).toContainEqual({ path, code: 'unsafe_pattern', message: expect.stringContaining(path) });
    });

    it('leaves the engine idle within seconds of the answers, and a simple GET fast, while eight run at once', async () => {
      const engine = engineProcesses(process.env.MONGODB_URI!);
      const attacks = Array.from({ length: 8 }, (_, n) => {
        const where = n % 2 ? { name: { like: EXPONENTIAL } } : { name: { like: COUNTED } };
        return request(t.http)
          .get(`/api/accounts/count?where=${json(where)}`)
          .timeout(CLIENT_TIMEOUT_MS);
      });
      let attacksDone = false;
      const answers = Promise.allSettled(attacks).then((results) => {
        attacksDone = true;
        return results;
      });
      // Simple reads beside the attack: at least three, at most twenty, each bounded by the client timeout.
      const simple: Array<{ status: number; ms: number }> = [];
      for (let n = 0; n < 20 && (n < 3 || !attacksDone); n += 1) {
        const started = performance.now();
        const res = await request(t.http).get('/api/devices/north-door').timeout(CLIENT_TIMEOUT_MS);
        simple.push({ status: res.status, ms: Math.round(performance.now() - started) });
      }
      const results = await answers;
      const share = await coreShare(engine, 3000);
      console.log(
        `ReDoS: 8 attacks answered ${results.map((r) => (r.status === 'fulfilled' ? r.value.status : 'timeout')).join(',')}; ` +
          `simple GETs beside them ${simple.map((s) => s.ms).join(',')} ms; engine (${engine.length} processes) used ${(share * 100).toFixed(0)}% of a core in the 3 s after`,
      );
      for (const result of results) {
        expect(result.status).toBe('fulfilled');
        if (result.status === 'fulfilled') expect(result.value.status).toBe(400);
      }
      expect(simple.every((s) => s.status === 200)).toBe(true);
      // Generous bounds: on main the engine stayed at a full core for minutes and reads beside it answered 503.
      expect(Math.max(...simple.map((s) => s.ms))).toBeLessThan(5000);
      expect(share).toBeLessThan(0.5);
    }, 90_000);

    it('still answers ordinary patterns', async () => {
      const res = await request(t.http)
        .get(`/api/accounts/${accountId}/devices?filter[where][deviceUID][like]=${encodeURIComponent('^Garage door')}`)
        .expect(200);
      expect(res.body.map((device: { myId: string }) => device.myId)).toEqual(['north-door']);
      expect(
        (
          await request(t.http)
            .get(`/api/accounts/count?where=${json({ name: { like: '^a+!$' } })}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 1 });
    });
  });

  describe('JSON bodies nested deeper than 32 levels (bug: 500 from a stack overflow after 4 s, /health delayed 17 s by eight)', () => {
    const deep = (levels: number) => `{"name":"x","deviceIds":${'['.repeat(levels)}${']'.repeat(levels)}}`;

    it('answers 400 too_deep to half a million [ at once, writes nothing, and /health stays fast while eight run', async () => {
      const body = deep(500_000);
      const started = performance.now();
      const attacks = Array.from({ length: 8 }, () =>
        request(t.http).post('/api/accounts').set('content-type', 'application/json').send(body).timeout(CLIENT_TIMEOUT_MS),
      );
      let attacksDone = false;
      const answers = Promise.allSettled(attacks).then((results) => {
        attacksDone = true;
        return results;
      });
      const health: number[] = [];
      for (let n = 0; n < 20 && (n < 3 || !attacksDone); n += 1) {
        const at = performance.now();
        await request(t.http).get('/health').timeout(CLIENT_TIMEOUT_MS).expect(200);
        health.push(Math.round(performance.now() - at));
      }
      const results = await answers;
      const elapsed = Math.round(performance.now() - started);
      console.log(`Deep bodies: 8 of 1 MB answered in ${elapsed} ms in all; /health beside them ${health.join(',')} ms`);
      for (const result of results) {
        expect(result.status).toBe('fulfilled');
        if (result.status !== 'fulfilled') continue;
        expectErrorShape(result.value, 400);
        expect(result.value.body.details).toEqual([{ path: 'body', code: 'too_deep', message: expect.any(String) }]);
      }
      expect(Math.max(...health)).toBeLessThan(5000);
      expect(await t.accounts.countDocuments()).toBe(1);
    });

    it('refuses 33 levels before validation and lets 32 through to it', async () => {
      const tooDeep = await request(t.http).post('/api/accounts').set('content-type', 'application/json').send(deep(32));
      expectErrorShape(tooDeep, 400);
      expect(tooDeep.body.details).toEqual([{ path: 'body', code: 'too_deep', message: expect.any(String) }]);
      // 32 levels parse; validation then says what is wrong with the ids.
      const deepest = await request(t.http).post('/api/accounts').set('content-type', 'application/json').send(deep(31));
      expectErrorShape(deepest, 400);
      expect(deepest.body.details.map((detail: { path: string }) => detail.path)).not.toContain('body');
    });

    it('refuses deep bodies on create-and-link too, and ignores brackets inside strings', async () => {
      const linked = await request(t.http)
        .post(`/api/accounts/${accountId}/devices`)
        .set('content-type', 'application/json')
        .send(`{"myId":"deep","deviceUID":${'['.repeat(40)}${']'.repeat(40)}}`);
      expectErrorShape(linked, 400);
      expect(linked.body.details).toEqual([{ path: 'body', code: 'too_deep', message: expect.any(String) }]);
      const text = `${'[{'.repeat(30)}"\\"`;
      await request(t.http).post('/api/accounts').send({ name: text }).expect(201);
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });

  describe('bodies other than application/json (bug: a form body created an account, 201)', () => {
    it.each([
      ['application/x-www-form-urlencoded', 'name=from-a-form'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nfrom-a-form\r\n--xyz--\r\n'],
      ['text/plain', '{"name":"from-a-form"}'],
      ['application/xml', '<name>from-a-form</name>'],
    ])('answers 415 in the error shape to %s on POST /api/accounts and create-and-link, and writes nothing', async (type, body) => {
      const before = await snapshot(t);
      for (const path of ['/api/accounts', `/api/accounts/${accountId}/devices`]) {
        const res = await request(t.http).post(path).set('content-type', type).send(body);
        expectErrorShape(res, 415);
        expect(res.body.message).toMatch(/application\/json/);
      }
      expect(await snapshot(t)).toEqual(before);
    });

    it('answers 415 to a body without a content type', async () => {
      const res = await request(t.http).put(`/api/accounts/${accountId}`).send('name').unset('Content-Type');
      expectErrorShape(res, 415);
    });

    it('documents 415 on every route with a body, and only there', async () => {
      const document = (await request(t.http).get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
      };
      const operations = Object.values(document.paths).flatMap((path) => Object.values(path));
      expect(operations.filter((operation) => operation.requestBody).length).toBeGreaterThan(5);
      for (const operation of operations) expect(Boolean(operation.responses['415'])).toBe(Boolean(operation.requestBody));
    });

    it('accepts application/json with a charset', async () => {
      await request(t.http)
        .post('/api/accounts')
        .set('content-type', 'application/json; charset=utf-8')
        .send('{"name":"json"}')
        .expect(201);
    });
  });

  describe('path ids over 128 characters (bug: 414 echoing the URL past 512)', () => {
    const routes: Array<[string, 'get' | 'put' | 'delete', (id: string) => string, string, string]> = [
      ['GET /api/devices/:id', 'get', (id) => `/api/devices/${id}`, 'id', 'invalid_device_id'],
      ['GET /api/accounts/:id', 'get', (id) => `/api/accounts/${id}`, 'id', 'invalid_object_id'],
      ['DELETE /api/devices/:id', 'delete', (id) => `/api/devices/${id}`, 'id', 'invalid_device_id'],
      ['PUT /api/accounts/:id/devices/rel/:fk', 'put', (id) => `/api/accounts/${accountId}/devices/rel/${id}`, 'fk', 'invalid_device_id'],
      ['GET /api/accounts/:id/devices/:fk', 'get', (id) => `/api/accounts/${accountId}/devices/${id}`, 'fk', 'invalid_device_id'],
    ];

    // Up to 1024 characters the route's own pipe refuses the id; past that, the router does.
    it.each(
      routes.flatMap(([name, method, path, param, code]) =>
        [
          [129, code],
          [513, code],
          [1025, 'too_long'],
          [4000, 'too_long'],
        ].map(([length, expected]) => [name, length, method, path, param, expected] as const),
      ),
    )(
      'answers %s with a %i-character id with 400 in the error shape, naming the parameter and not echoing the URL',
      async (_name, length, method, path, param, code) => {
        const id = 'a'.repeat(Number(length));
        const res = await request(t.http)[method](path(id)).set('x-request-id', 'long-id');
        expectErrorShape(res, 400);
        expect(res.body.details).toEqual([
          { path: param, code, message: code === 'too_long' ? expect.stringContaining('128') : expect.any(String) },
        ]);
        expect(res.text).not.toContain('a'.repeat(129));
        expect(res.headers['x-request-id']).toBe('long-id');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
      },
    );

    it('lets a 128-character myId through to the route', async () => {
      const res = await request(t.http).get(`/api/devices/${'a'.repeat(128)}`);
      expectErrorShape(res, 404);
    });

    it('answers a malformed percent-encoding with 400 in the error shape', async () => {
      const res = await request(t.http).get('/api/devices/%E0%A4%A');
      expectErrorShape(res, 400);
      expect(res.text).not.toContain('%E0');
    });
  });
});
