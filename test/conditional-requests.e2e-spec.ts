import { beforeAll, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request, { type Response } from 'supertest';
import { type AccountBody, type DeviceBody } from './support/bodies.js';
import { expectError } from './support/http.js';
import { appUnderTest, type TestApp } from './support/test-app.js';

const STRONG_TAG = /^"[0-9a-f]{24}-\d+"$/;
const UNKNOWN_ID = '0123456789abcdef01234567';

/** The documents a conditional write is tried on: an account referencing devices a and b. */
interface Scene {
  account: AccountBody;
  a: DeviceBody;
  b: DeviceBody;
}

/** A write that honours If-Match, and how to read the document it writes. */
interface ConditionalWrite {
  route: string;
  method: 'patch' | 'put' | 'delete';
  path: (scene: Scene) => string;
  /** The body of the n-th client's request; different per client, so the stored result says who won. */
  body?: (n: number) => object;
  /** The document's own route (its ETag) and its collection. */
  resource: (scene: Scene) => { path: string; model: 'accounts' | 'devices'; _id: string };
  /** What the winner with body n left in the stored document. */
  wrote: (stored: Record<string, unknown> | null, n: number) => void;
}

const accountOf = (scene: Scene) => ({ path: `/api/accounts/${scene.account._id}`, model: 'accounts' as const, _id: scene.account._id });
const deviceA = (scene: Scene) => ({ path: `/api/devices/${scene.a._id}`, model: 'devices' as const, _id: scene.a._id });

const WRITES: ConditionalWrite[] = [
  {
    route: 'PATCH /api/accounts/:id',
    method: 'patch',
    path: (scene) => `/api/accounts/${scene.account._id}`,
    body: (n) => ({ name: `client-${n}` }),
    resource: accountOf,
    wrote: (stored, n) => expect(stored).toMatchObject({ name: `client-${n}` }),
  },
  {
    route: 'PUT /api/accounts/:id',
    method: 'put',
    path: (scene) => `/api/accounts/${scene.account._id}`,
    body: (n) => ({ name: `client-${n}`, deviceIds: n === 1 ? ['a'] : ['b'] }),
    resource: accountOf,
    wrote: (stored, n) => expect(stored).toMatchObject({ name: `client-${n}`, deviceIds: [expect.any(Types.ObjectId)] }),
  },
  {
    route: 'PUT /api/accounts/:id/devices/rel',
    method: 'put',
    path: (scene) => `/api/accounts/${scene.account._id}/devices/rel`,
    body: (n) => ({ ids: n === 1 ? ['b'] : ['b', 'a'] }),
    resource: accountOf,
    wrote: (stored, n) => expect((stored?.deviceIds as unknown[]).length).toBe(n),
  },
  {
    route: 'PATCH /api/devices/:id (ObjectId)',
    method: 'patch',
    path: (scene) => `/api/devices/${scene.a._id}`,
    body: (n) => ({ deviceUID: `UID-client-${n}` }),
    resource: deviceA,
    wrote: (stored, n) => expect(stored).toMatchObject({ deviceUID: `UID-client-${n}` }),
  },
  {
    route: 'PATCH /api/devices/:id (myId)',
    method: 'patch',
    path: (scene) => `/api/devices/${scene.a.myId}`,
    body: (n) => ({ deviceUID: `UID-client-${n}` }),
    resource: deviceA,
    wrote: (stored, n) => expect(stored).toMatchObject({ deviceUID: `UID-client-${n}` }),
  },
  {
    route: 'PUT /api/devices/:id',
    method: 'put',
    path: (scene) => `/api/devices/${scene.a.myId}`,
    body: (n) => ({ myId: 'a', deviceUID: `UID-client-${n}` }),
    resource: deviceA,
    wrote: (stored, n) => expect(stored).toMatchObject({ myId: 'a', deviceUID: `UID-client-${n}` }),
  },
  {
    route: 'DELETE /api/accounts/:id',
    method: 'delete',
    path: (scene) => `/api/accounts/${scene.account._id}`,
    resource: accountOf,
    wrote: (stored) => expect(stored).toBeNull(),
  },
  {
    route: 'DELETE /api/devices/:id (ObjectId)',
    method: 'delete',
    path: (scene) => `/api/devices/${scene.a._id}`,
    resource: deviceA,
    // Marked at once, removed by the sweeper soon after.
    wrote: (stored) => expect(stored === null || stored.deletingSince instanceof Date).toBe(true),
  },
  {
    route: 'DELETE /api/devices/:id (myId)',
    method: 'delete',
    path: (scene) => `/api/devices/${scene.a.myId}`,
    resource: deviceA,
    wrote: (stored) => expect(stored === null || stored.deletingSince instanceof Date).toBe(true),
  },
];

/** The stored document as the driver sees it, bookkeeping included. */
function raw(t: TestApp, model: 'accounts' | 'devices', _id: string) {
  return t[model].collection.findOne({ _id: new Types.ObjectId(_id) });
}

describe('Conditional requests', () => {
  const app = appUnderTest();

  const scene = async (): Promise<Scene> => {
    const a = await app.api.device('a');
    const b = await app.api.device('b');
    return { account: await app.api.account('Home', ['a', 'b']), a, b };
  };
  const send = (write: ConditionalWrite, s: Scene, ifMatch: string | undefined, n = 1) => {
    const call = request(app.t.http)[write.method](write.path(s));
    if (ifMatch !== undefined) void call.set('If-Match', ifMatch);
    return write.body ? call.send(write.body(n)) : call;
  };

  describe('ETag', () => {
    it('gives an account one strong ETag, "<ObjectId>-<revision>", which every write moves on and reads leave alone', async () => {
      const s = await scene();
      const path = `/api/accounts/${s.account._id}`;
      const created = await request(app.t.http).post('/api/accounts').send({ name: 'Other' }).expect(201);
      expect(created.headers.etag).toBe(`"${created.body._id}-0"`);

      const first = await request(app.t.http).get(path).expect(200);
      expect(first.headers.etag).toMatch(STRONG_TAG);
      expect(first.headers.etag).toBe(`"${s.account._id}-0"`);
      expect(first.body).not.toHaveProperty('rev');
      expect(await app.api.etag(path)).toBe(first.headers.etag);

      const tags = [first.headers.etag as string];
      const patched = await request(app.t.http).patch(path).send({ name: 'Renamed' }).expect(200);
      expect(patched.headers.etag).toBe(await app.api.etag(path));
      tags.push(patched.headers.etag as string);
      await request(app.t.http).delete(`/api/accounts/${s.account._id}/devices/rel/a`).expect(204);
      tags.push(await app.api.etag(path));
      await request(app.t.http).put(`/api/accounts/${s.account._id}/devices/rel/a`).expect(200);
      tags.push(await app.api.etag(path));
      // Deleting a device pulls it from the account: that is a write of the account too.
      await request(app.t.http).delete('/api/devices/b').expect(200);
      tags.push(await app.api.etag(path));
      expect(new Set(tags).size).toBe(tags.length);
      expect(tags.every((tag) => STRONG_TAG.test(tag))).toBe(true);
    });

    it('gives a device the same ETag by ObjectId and by myId, and one of its own to a device created again under that myId', async () => {
      const device = await request(app.t.http).post('/api/devices').send({ myId: 'lamp', deviceUID: 'UID-1' }).expect(201);
      expect(device.headers.etag).toBe(`"${device.body._id}-0"`);
      expect(await app.api.etag(`/api/devices/${device.body._id}`)).toBe(device.headers.etag);
      expect(await app.api.etag('/api/devices/lamp')).toBe(device.headers.etag);
      await request(app.t.http).delete('/api/devices/lamp').expect(200);
      const again = await request(app.t.http).post('/api/devices').send({ myId: 'lamp', deviceUID: 'UID-1' }).expect(201);
      expect(again.headers.etag).not.toBe(device.headers.etag);
      expectError(
        await request(app.t.http)
          .patch('/api/devices/lamp')
          .set('If-Match', device.headers.etag as string)
          .send({ deviceUID: 'UID-2' }),
        412,
        { including: [{ path: 'If-Match', code: 'precondition_failed' }] },
      );
      expect(await app.t.devices.findById(again.body._id).lean()).toMatchObject({ deviceUID: 'UID-1' });
    });

    it('carries the device ETag on the relation routes that answer the device itself', async () => {
      const s = await scene();
      const tag = await app.api.etag('/api/devices/a');
      const read = await request(app.t.http).get(`/api/accounts/${s.account._id}/devices/a`).expect(200);
      expect(read.headers.etag).toBe(tag);
      const changed = await request(app.t.http).put(`/api/accounts/${s.account._id}/devices/a`).send({ deviceUID: 'UID-9' }).expect(200);
      expect(changed.headers.etag).toBe(await app.api.etag('/api/devices/a'));
      expect(changed.headers.etag).not.toBe(tag);
    });

    it.each([
      ['picks fields', '/api/accounts/{id}?filter={"fields":{"name":true}}'],
      ['includes devices', '/api/accounts/{id}?include=devices'],
      ['picks device fields', '/api/devices/a?filter={"fields":{"myId":true}}'],
      ['lists', '/api/accounts'],
      ['counts', '/api/devices/count'],
      ['lists the relation', '/api/accounts/{id}/devices'],
    ])('gives no ETag to a read that %s (it is not the document as stored)', async (_case, template) => {
      const s = await scene();
      const res = await request(app.t.http)
        .get(encodeURI(template.replace('{id}', s.account._id)))
        .expect(200);
      expect(res.headers.etag).toBeUndefined();
    });
  });

  describe('If-None-Match on GET', () => {
    it.each([
      ['the current ETag', (tag: string) => tag],
      ['its weak form', (tag: string) => `W/${tag}`],
      ['*', () => '*'],
      ['a list holding it', (tag: string) => `"other", ${tag} , W/"x"`],
    ])('answers 304, with the ETag and no body, when it names %s', async (_case, header) => {
      const s = await scene();
      for (const path of [`/api/accounts/${s.account._id}`, '/api/devices/a', `/api/devices/${s.a._id}`]) {
        const tag = await app.api.etag(path);
        const res = await request(app.t.http).get(path).set('If-None-Match', header(tag));
        expect(res.status).toBe(304);
        expect(res.headers.etag).toBe(tag);
        expect(res.text ?? '').toBe('');
      }
    });

    it('answers 200 with the document when it names an older version', async () => {
      const s = await scene();
      const path = `/api/accounts/${s.account._id}`;
      const old = await app.api.etag(path);
      await request(app.t.http).patch(path).send({ name: 'New' }).expect(200);
      const res = await request(app.t.http).get(path).set('If-None-Match', old).expect(200);
      expect(res.body).toMatchObject({ name: 'New' });
      expect(res.headers.etag).not.toBe(old);
    });

    it('answers 200 to a read that carries no ETag, whatever it says', async () => {
      const s = await scene();
      await request(app.t.http).get(`/api/accounts/${s.account._id}?include=devices`).set('If-None-Match', '*').expect(200);
    });

    it('answers 404 for an unknown document, and 400 naming the header when it is malformed', async () => {
      await request(app.t.http).get(`/api/accounts/${UNKNOWN_ID}`).set('If-None-Match', '*').expect(404);
      await request(app.t.http).get('/api/devices/nowhere').set('If-None-Match', '*').expect(404);
      await scene();
      expectError(await request(app.t.http).get('/api/devices/a').set('If-None-Match', 'abc'), 400, {
        including: [{ path: 'If-None-Match', code: 'invalid_entity_tag' }],
      });
    });
  });

  describe.each(WRITES)('If-Match on $route', (write) => {
    it('writes when it names the current version; an answer that is the document carries its new ETag', async () => {
      const s = await scene();
      const { path, model, _id } = write.resource(s);
      const res = await send(write, s, await app.api.etag(path));
      expect(res.status).toBe(200);
      if (write.method !== 'delete') {
        expect(res.headers.etag).toMatch(STRONG_TAG);
        expect(res.headers.etag).toBe(await app.api.etag(path));
      }
      write.wrote(await raw(app.t, model, _id), 1);
    });

    it('answers 412 in the error shape and writes nothing when the document has changed since', async () => {
      const s = await scene();
      const { path, model, _id } = write.resource(s);
      const old = await app.api.etag(path);
      await request(app.t.http)
        .patch(path)
        .send(model === 'accounts' ? { name: 'Changed' } : { deviceUID: 'UID-changed' })
        .expect(200);
      const before = await raw(app.t, model, _id);
      const accounts = await app.t.accounts.find().lean();
      const res = await send(write, s, old);
      expectError(res, 412, { including: [{ path: 'If-Match', code: 'precondition_failed' }] });
      expect(res.body.message).toMatch(
        model === 'accounts' ? /^If-Match: Account [0-9a-f]{24} has changed/ : /^If-Match: Device \S+ has changed/,
      );
      expect(await raw(app.t, model, _id)).toEqual(before);
      expect(await app.t.accounts.find().lean()).toEqual(accounts);
    });

    it.each([
      ['*', () => '*'],
      ['a list with the current ETag among others', (tag: string) => `"${UNKNOWN_ID}-0", ${tag}, W/"x"`],
    ])('writes for %s', async (_case, header) => {
      const s = await scene();
      const { path, model, _id } = write.resource(s);
      expect((await send(write, s, header(await app.api.etag(path)))).status).toBe(200);
      write.wrote(await raw(app.t, model, _id), 1);
    });

    it.each([
      ['the weak form of the current ETag (If-Match compares strongly)', (tag: string) => `W/${tag}`],
      ["another document's ETag at the same revision", (tag: string) => tag.replace(/^"[0-9a-f]{24}/, `"${UNKNOWN_ID}`)],
      ['a tag the service never gives', () => '"abc"'],
    ])('answers 412 and writes nothing for %s', async (_case, header) => {
      const s = await scene();
      const { path, model, _id } = write.resource(s);
      const before = await raw(app.t, model, _id);
      expectError(await send(write, s, header(await app.api.etag(path))), 412, {
        including: [{ path: 'If-Match', code: 'precondition_failed' }],
      });
      expect(await raw(app.t, model, _id)).toEqual(before);
    });

    it('answers 404 for an unknown document, whatever it says', async () => {
      const s = await scene();
      const unknown: Scene = { ...s, account: { ...s.account, _id: UNKNOWN_ID }, a: { ...s.a, _id: UNKNOWN_ID, myId: 'nowhere' } };
      expect((await send(write, unknown, '*')).status).toBe(404);
      expect((await send(write, unknown, `"${UNKNOWN_ID}-0"`)).status).toBe(404);
    });

    it.each(['abc', '"unterminated', '*, "x"', 'W/x', '"a" "b"', ''])(
      'answers 400 naming If-Match for %j, and writes nothing',
      async (header) => {
        const s = await scene();
        const { model, _id } = write.resource(s);
        const before = await raw(app.t, model, _id);
        expectError(await send(write, s, header), 400, { including: [{ path: 'If-Match', code: 'invalid_entity_tag' }] });
        expect(await raw(app.t, model, _id)).toEqual(before);
      },
    );
  });

  it('refuses more than 100 entity tags in If-Match (400), writing nothing', async () => {
    const s = await scene();
    const tags = Array.from({ length: 101 }, (_, i) => `"${UNKNOWN_ID}-${i}"`).join(', ');
    const res = await request(app.t.http).patch(`/api/accounts/${s.account._id}`).set('If-Match', tags).send({ name: 'x' });
    expectError(res, 400, { including: [{ path: 'If-Match', code: 'too_many_entity_tags' }] });
    expect(await app.t.accounts.findById(s.account._id).lean()).toMatchObject({ name: 'Home' });
  });

  it('leaves a device that DELETE refused with 412 unmarked, still referenced and readable', async () => {
    const s = await scene();
    const old = await app.api.etag('/api/devices/a');
    await request(app.t.http).patch('/api/devices/a').send({ deviceUID: 'UID-new' }).expect(200);
    expectError(await request(app.t.http).delete('/api/devices/a').set('If-Match', old), 412, {
      including: [{ path: 'If-Match', code: 'precondition_failed' }],
    });
    expect(await raw(app.t, 'devices', s.a._id)).not.toHaveProperty('deletingSince');
    expect(await app.t.accounts.countDocuments({ deviceIds: new Types.ObjectId(s.a._id) })).toBe(1);
    await request(app.t.http).get('/api/devices/a').expect(200);
  });

  it('is documented: If-Match and its 412 on each conditional write, ETag on each answer that is one document, If-None-Match and 304 on its reads', async () => {
    interface Operation {
      parameters?: Array<{ name: string; in: string; required?: boolean }>;
      responses: Record<
        string,
        { headers?: Record<string, unknown>; content?: Record<string, { examples?: Record<string, { value: unknown }> }> }
      >;
    }
    const { paths } = (await request(app.t.http).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, Operation>>;
    };
    const header = (name: string) => expect.objectContaining({ name, in: 'header', required: false });
    const conditional = [
      'patch /api/accounts/{id}',
      'put /api/accounts/{id}',
      'delete /api/accounts/{id}',
      'put /api/accounts/{id}/devices/rel',
      'patch /api/devices/{id}',
      'put /api/devices/{id}',
      'delete /api/devices/{id}',
    ];
    const all = Object.entries(paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
    expect(
      all.filter((route) => paths[route.split(' ')[1]][route.split(' ')[0]].parameters?.some((p) => p.name === 'If-Match')).sort(),
    ).toEqual([...conditional].sort());
    for (const route of conditional) {
      const [method, path] = route.split(' ');
      const operation = paths[path][method];
      expect(operation.parameters).toContainEqual(header('If-Match'));
      expect(operation.responses['412'].content?.['application/json'].examples?.changed.value).toMatchObject({
        statusCode: 412,
        error: 'Precondition Failed',
        details: [{ path: 'If-Match', code: 'precondition_failed' }],
      });
    }
    const tagged = [
      'get /api/accounts/{id} 200',
      'get /api/devices/{id} 200',
      'get /api/accounts/{id}/devices/{fk} 200',
      'post /api/accounts 201',
      'post /api/devices 201',
      'patch /api/accounts/{id} 200',
      'put /api/accounts/{id} 200',
      'patch /api/devices/{id} 200',
      'put /api/devices/{id} 200',
      'put /api/accounts/{id}/devices/{fk} 200',
      'post /api/accounts/{id}/devices/rel 200',
      'put /api/accounts/{id}/devices/rel 200',
    ];
    for (const route of tagged) {
      const [method, path, status] = route.split(' ');
      expect({ route, etag: paths[path][method].responses[status].headers?.ETag }).toEqual({ route, etag: expect.anything() });
    }
    for (const path of ['/api/accounts/{id}', '/api/devices/{id}', '/api/accounts/{id}/devices/{fk}']) {
      const operation = paths[path].get;
      expect(operation.parameters).toContainEqual(header('If-None-Match'));
      expect(operation.responses['304'].headers?.ETag).toBeDefined();
      expect(operation.responses['304'].content).toBeUndefined();
    }
  });

  it('validates the body before the precondition: a bad body is a 400 whatever If-Match says', async () => {
    const s = await scene();
    const res = await request(app.t.http).patch(`/api/accounts/${s.account._id}`).set('If-Match', '"abc"').send({ name: '' });
    expectError(res, 400, { including: [{ path: 'name', code: 'isLength' }] });
  });
});

describe('Conditional requests across origins', () => {
  const app = appUnderTest({ config: { http: { corsOrigins: ['https://app.example'] } } });

  it('lets a browser client read ETag and send If-Match and If-None-Match', async () => {
    const preflight = await request(app.t.http)
      .options('/api/devices/a')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'PATCH')
      .set('Access-Control-Request-Headers', 'if-match, if-none-match, content-type');
    expect(preflight.status).toBeLessThan(300);
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    expect(allowed).toContain('if-match');
    expect(allowed).toContain('if-none-match');
    const read = await request(app.t.http).get('/api/accounts/count').set('Origin', 'https://app.example').expect(200);
    expect(String(read.headers['access-control-expose-headers']).split(/,\s*/)).toContain('ETag');
  });
});

describe('Two clients writing one version', () => {
  const app = appUnderTest({}, { listening: true });
  /** Two clients, each on connections of its own (a supertest agent). */
  let clients: Array<ReturnType<typeof request.agent>>;
  const ROUNDS = 8;

  beforeAll(() => {
    clients = [request.agent(app.server), request.agent(app.server)];
  });

  it.each(WRITES.filter((write) => write.method !== 'delete'))(
    '$route: both read the same ETag and write with it at once; one wins, the other gets 412, and the winner is stored',
    async (write) => {
      const outcomes: number[] = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        await app.t.clear();
        const s: Scene = { a: await app.api.device('a'), b: await app.api.device('b'), account: await app.api.account('Home', []) };
        await request(app.server)
          .put(`/api/accounts/${s.account._id}/devices/rel`)
          .send({ ids: ['a', 'b'] })
          .expect(200);
        const { path, model, _id } = write.resource(s);
        const [tag1, tag2] = await Promise.all(clients.map((client) => client.get(path).then((res) => res.headers.etag as string)));
        expect(tag1).toBe(tag2);
        const responses: Response[] = await Promise.all(
          clients.map((client, i) =>
            client[write.method](write.path(s))
              .set('If-Match', tag1)
              .send(write.body!(i + 1)),
          ),
        );
        const statuses = responses.map((res) => res.status);
        expect([...statuses].sort()).toEqual([200, 412]);
        const winner = statuses.indexOf(200) + 1;
        outcomes.push(winner);
        expectError(responses[2 - winner], 412, { including: [{ path: 'If-Match', code: 'precondition_failed' }] });
        write.wrote(await raw(app.t, model, _id), winner);
        expect(responses[winner - 1].headers.etag).toBe(await app.api.etag(path));
      }
      expect(outcomes).toHaveLength(ROUNDS);
    },
  );

  it('DELETE and PATCH of a device with one ETag at once: exactly one succeeds, and the other learns why', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      await app.t.clear();
      const device = await app.api.device('a');
      await app.api.account('Home', ['a']);
      const tag = await app.api.etag('/api/devices/a');
      const [removed, patched] = await Promise.all([
        clients[round % 2].delete('/api/devices/a').set('If-Match', tag),
        clients[(round + 1) % 2].patch('/api/devices/a').set('If-Match', tag).send({ deviceUID: 'UID-patched' }),
      ]);
      if (removed.status === 200) {
        // Gone: the document the PATCH named no longer exists.
        expect(patched.status).toBe(404);
        expect(await app.t.accounts.countDocuments({ deviceIds: new Types.ObjectId(device._id) })).toBe(0);
      } else {
        expectError(removed, 412, { including: [{ path: 'If-Match', code: 'precondition_failed' }] });
        expect(patched.status).toBe(200);
        expect(await app.t.devices.findById(device._id).lean()).toMatchObject({ deviceUID: 'UID-patched' });
      }
    }
  });
});
