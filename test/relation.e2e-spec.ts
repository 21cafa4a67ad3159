import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { relationConfig } from '../src/config/config.module.js';
import { type DeviceBody } from './support/bodies.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const UNKNOWN_ID = '0123456789abcdef01234567';
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Entity' };

/** The DESIGN.md error shape, exactly; `details` compared when given. */
function expectError(res: request.Response, statusCode: number, details?: Array<{ path: string; code: string }>) {
  expect(res.status).toBe(statusCode);
  const expected: Record<string, unknown> = { statusCode, error: STATUS_TEXT[statusCode], message: expect.any(String) };
  if (details) expected.details = details.map((detail) => ({ ...detail, message: expect.any(String) }));
  expect(res.body).toEqual(expected);
}

const json = (value: unknown) => encodeURIComponent(JSON.stringify(value));

describe('Relation routes', () => {
  let t: TestApp;
  let d: Record<'d1' | 'd2' | 'd3' | 'd4' | 'd5', DeviceBody>;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    d = {} as typeof d;
    for (const myId of ['d1', 'd2', 'd3', 'd4', 'd5'] as const) d[myId] = await createDevice(t, myId);
  });

  const createDevice = (app: TestApp, myId: string): Promise<DeviceBody> =>
    request(app.http)
      .post('/api/devices')
      .send({ myId, deviceUID: `uid-${myId}` })
      .expect(201)
      .then((res) => res.body);

  const createAccount = (deviceIds: string[] = [], name = 'acc', app = t): Promise<string> =>
    request(app.http)
      .post('/api/accounts')
      .send({ name, deviceIds })
      .expect(201)
      .then((res) => res.body._id);

  const storedIds = async (id: string, app = t) => (await app.accounts.findById(id).lean())?.deviceIds.map(String);
  const myIds = (res: request.Response) => res.body.map((device: DeviceBody) => device.myId);

  describe('GET /api/accounts/:id/devices', () => {
    it.each([
      ['JSON', `filter=${json({ limit: 2, skip: 1 })}`],
      ['the bracket form', 'filter[limit]=2&filter[skip]=1'],
      ['offset', 'filter[limit]=2&filter[offset]=1'],
    ])('pages {"limit":2,"skip":1} in reference order, given as %s', async (_case, query) => {
      const account = await createAccount(['d4', 'd2', 'd5', 'd1']);
      await createAccount(['d3', 'd1'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices?${query}`).expect(200);
      expect(res.body).toEqual([d.d2, d.d5]);
      expect(res.headers['x-total-count']).toBe('4');
    });

    it('answers an empty page past the end with the full X-Total-Count', async () => {
      const account = await createAccount(['d4', 'd2']);
      const res = await request(t.http).get(`/api/accounts/${account}/devices?filter[skip]=5`).expect(200);
      expect(res.body).toEqual([]);
      expect(res.headers['x-total-count']).toBe('2');
    });

    it('applies where within this account only, in reference order, with X-Total-Count of matches', async () => {
      const account = await createAccount(['d4', 'd2', 'd1']);
      await createAccount(['d5', 'd3'], 'other');
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ where: { myId: { inq: ['d1', 'd3', 'd4', 'd5'] } } })}`)
        .expect(200);
      expect(res.body).toEqual([d.d4, d.d1]);
      expect(res.headers['x-total-count']).toBe('2');
    });

    it('pages a where in reference order', async () => {
      const account = await createAccount(['d4', 'd2', 'd5', 'd1']);
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter[where][myId][neq]=d2&filter[skip]=1&filter[limit]=1`)
        .expect(200);
      expect(res.body).toEqual([d.d5]);
      expect(res.headers['x-total-count']).toBe('3');
    });

    it('applies where on _id by myId and by ObjectId within this account', async () => {
      const account = await createAccount(['d3', 'd1']);
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ where: { _id: { inq: ['d1', d.d3._id, 'd2'] } } })}`)
        .expect(200);
      expect(res.body).toEqual([d.d3, d.d1]);
    });

    it('applies order, skip and limit within this account, with X-Total-Count of matches', async () => {
      const account = await createAccount(['d2', 'd4', 'd1', 'd3']);
      await createAccount(['d5'], 'other');
      const ordered = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ order: 'myId DESC' })}`)
        .expect(200);
      expect(myIds(ordered)).toEqual(['d4', 'd3', 'd2', 'd1']);
      const page = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ where: { myId: { neq: 'd3' } }, order: 'myId DESC', skip: 1, limit: 1 })}`)
        .expect(200);
      expect(page.body).toEqual([d.d2]);
      expect(page.headers['x-total-count']).toBe('3');
    });

    it('applies fields within the relation', async () => {
      const account = await createAccount(['d2', 'd1']);
      const listed = await request(t.http).get(`/api/accounts/${account}/devices?filter[fields][0]=myId`).expect(200);
      expect(listed.body).toEqual([
        { _id: d.d2._id, myId: 'd2' },
        { _id: d.d1._id, myId: 'd1' },
      ]);
      const withoutId = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ fields: { _id: false, myId: true }, order: 'myId' })}`)
        .expect(200);
      expect(withoutId.body).toEqual([{ myId: 'd1' }, { myId: 'd2' }]);
    });

    it('answers 400 for include, which devices do not have', async () => {
      const account = await createAccount(['d1']);
      const res = await request(t.http).get(`/api/accounts/${account}/devices?filter[include]=devices`);
      expectError(res, 400, [{ path: 'filter.include', code: 'unknown_relation' }]);
    });

    it('answers 404 for an unknown account, with and without a filter', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices`), 404);
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices?filter[where][myId]=d1`), 404);
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices?filter[order]=myId`), 404);
    });
  });

  describe('GET /api/accounts/:id/devices/count', () => {
    it('counts only this account’s devices while unlinked devices exist (LoopBack 3 counted the whole collection)', async () => {
      const account = await createAccount(['d2', 'd4']);
      await createAccount(['d1'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices/count`).expect(200);
      expect(res.body).toEqual({ count: 2 });
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it.each([
      ['JSON', `where=${json({ myId: { like: '^d' } })}`, 2],
      ['the bracket form', 'where[myId][like]=^d', 2],
      ['a where that matches one', `where=${json({ or: [{ myId: 'd4' }, { myId: 'd5' }] })}`, 1],
      ['a where on _id by myId', 'where[_id][inq][0]=d1&where[_id][inq][1]=d2', 1],
    ])('counts this account’s devices matching a where given as %s', async (_case, query, expected) => {
      const account = await createAccount(['d2', 'd4']);
      await createAccount(['d1', 'd5'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices/count?${query}`).expect(200);
      expect(res.body).toEqual({ count: expected });
    });

    it('counts 0 for an account without devices', async () => {
      const account = await createAccount();
      expect((await request(t.http).get(`/api/accounts/${account}/devices/count`).expect(200)).body).toEqual({ count: 0 });
      expect((await request(t.http).get(`/api/accounts/${account}/devices/count?where[myId]=d1`).expect(200)).body).toEqual({ count: 0 });
    });

    it('answers 404 for an unknown account, with and without where', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/count`), 404);
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/count?where[myId]=d1`), 404);
    });

    it('answers 400 naming the where path for a refused where', async () => {
      const account = await createAccount(['d1']);
      expectError(await request(t.http).get(`/api/accounts/${account}/devices/count?where[name]=x`), 400, [
        { path: 'where.name', code: 'unknown_field' },
      ]);
    });
  });

  describe('POST /api/accounts/:id/devices', () => {
    it('creates a device, links it at the end and answers 201 with the device', async () => {
      const account = await createAccount(['d1']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'fresh', deviceUID: 'UID-F' }).expect(201);
      expect(res.body).toEqual({
        _id: expect.stringMatching(/^[0-9a-f]{24}$/),
        myId: 'fresh',
        deviceUID: 'UID-F',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(await storedIds(account)).toEqual([d.d1._id, res.body._id]);
      expect((await t.devices.findById(res.body._id).lean())?.myId).toBe('fresh');
    });

    it('answers 409 for a duplicate myId, links nothing and creates nothing', async () => {
      const account = await createAccount(['d1']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'd2', deviceUID: 'UID-NEW' });
      expectError(res, 409, [{ path: 'myId', code: 'duplicate' }]);
      expect(await storedIds(account)).toEqual([d.d1._id]);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 404 for an unknown account and creates no device', async () => {
      const res = await request(t.http).post(`/api/accounts/${UNKNOWN_ID}/devices`).send({ myId: 'orphan', deviceUID: 'UID-O' });
      expectError(res, 404);
      expect(await t.devices.countDocuments({ myId: 'orphan' })).toBe(0);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 400 for an invalid device and creates nothing', async () => {
      const account = await createAccount();
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'count', deviceUID: 'UID-X' });
      expect(res.status).toBe(400);
      expect(res.body.details.map((detail: { path: string }) => detail.path)).toContain('myId');
      expect(await t.devices.countDocuments()).toBe(5);
      expect(await storedIds(account)).toEqual([]);
    });
  });

  describe('DELETE /api/accounts/:id/devices', () => {
    it('deletes only this account’s devices while unlinked devices exist (LoopBack 3 deleted the whole collection)', async () => {
      const account = await createAccount(['d2', 'd4']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices`).expect(200);
      expect(res.body).toEqual({ count: 2 });
      expect((await t.devices.find({}, { myId: 1 }).lean()).map((device) => device.myId).sort()).toEqual(['d1', 'd3', 'd5']);
      expect(await storedIds(account)).toEqual([]);
    });

    it('removes the deleted devices from every other account and keeps their other devices', async () => {
      const account = await createAccount(['d1', 'd2']);
      const other = await createAccount(['d3', 'd2', 'd5'], 'other');
      const third = await createAccount(['d1'], 'third');
      await request(t.http).delete(`/api/accounts/${account}/devices`).expect(200);
      expect(await storedIds(other)).toEqual([d.d3._id, d.d5._id]);
      expect(await storedIds(third)).toEqual([]);
      expect(await t.accounts.countDocuments({ deviceIds: { $in: [d.d1._id, d.d2._id] } })).toBe(0);
      expect(await t.accounts.countDocuments()).toBe(3);
    });

    it('answers { count: 0 } for an account without devices and deletes nothing', async () => {
      const account = await createAccount();
      expect((await request(t.http).delete(`/api/accounts/${account}/devices`).expect(200)).body).toEqual({ count: 0 });
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 404 for an unknown account and deletes nothing', async () => {
      expectError(await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}/devices`), 404);
      expect(await t.devices.countDocuments()).toBe(5);
    });
  });

  describe('GET /api/accounts/:id/devices/:fk', () => {
    it('answers a linked device by ObjectId and by myId', async () => {
      const account = await createAccount(['d1', 'd3']);
      expect((await request(t.http).get(`/api/accounts/${account}/devices/${d.d3._id}`).expect(200)).body).toEqual(d.d3);
      expect((await request(t.http).get(`/api/accounts/${account}/devices/d3`).expect(200)).body).toEqual(d.d3);
    });

    it.each([
      ['an existing device that is not linked', 'd2'],
      ['an unknown device ObjectId', UNKNOWN_ID],
      ['an unknown device myId', 'ghost'],
    ])('answers 404 for %s', async (_case, fk) => {
      const account = await createAccount(['d1']);
      await createAccount(['d2'], 'other');
      expectError(await request(t.http).get(`/api/accounts/${account}/devices/${fk}`), 404);
    });

    it('answers 404 for an unknown account', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/d1`), 404);
    });
  });

  describe('PUT /api/accounts/:id/devices/:fk', () => {
    it('changes only the given fields of a linked device', async () => {
      const account = await createAccount(['d1', 'd2']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/d2`).send({ deviceUID: 'UID-NEW' }).expect(200);
      expect(res.body).toMatchObject({ _id: d.d2._id, myId: 'd2', deviceUID: 'UID-NEW' });
      expect(await t.devices.findById(d.d2._id).lean()).toMatchObject({ myId: 'd2', deviceUID: 'UID-NEW' });
      expect(await storedIds(account)).toEqual([d.d1._id, d.d2._id]);
    });

    it('renames a linked device by ObjectId and keeps the link', async () => {
      const account = await createAccount(['d1']);
      await request(t.http).put(`/api/accounts/${account}/devices/${d.d1._id}`).send({ myId: 'renamed' }).expect(200);
      expect((await t.devices.findById(d.d1._id).lean())?.myId).toBe('renamed');
      await request(t.http).head(`/api/accounts/${account}/devices/rel/renamed`).expect(200);
    });

    it('answers 404 for a device that is not linked and leaves it unchanged', async () => {
      const account = await createAccount(['d1']);
      expectError(await request(t.http).put(`/api/accounts/${account}/devices/d2`).send({ deviceUID: 'UID-HACK' }), 404);
      expect((await t.devices.findById(d.d2._id).lean())?.deviceUID).toBe('uid-d2');
    });

    it('answers 409 for a taken myId and 400 for an unknown property, changing nothing', async () => {
      const account = await createAccount(['d1']);
      expectError(await request(t.http).put(`/api/accounts/${account}/devices/d1`).send({ myId: 'd2' }), 409, [
        { path: 'myId', code: 'duplicate' },
      ]);
      const invalid = await request(t.http).put(`/api/accounts/${account}/devices/d1`).send({ deviceIds: [] });
      expect(invalid.status).toBe(400);
      expect(await t.devices.findById(d.d1._id).lean()).toMatchObject({ myId: 'd1', deviceUID: 'uid-d1' });
    });
  });

  describe('DELETE /api/accounts/:id/devices/:fk', () => {
    it('destroys a linked device, answers { count: 1 } and pulls it from every account', async () => {
      const account = await createAccount(['d1', 'd2', 'd3']);
      const other = await createAccount(['d2', 'd4'], 'other');
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/d2`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.devices.exists({ _id: d.d2._id })).toBeNull();
      expect(await storedIds(account)).toEqual([d.d1._id, d.d3._id]);
      expect(await storedIds(other)).toEqual([d.d4._id]);
    });

    it('destroys by ObjectId as well', async () => {
      const account = await createAccount(['d5']);
      expect((await request(t.http).delete(`/api/accounts/${account}/devices/${d.d5._id}`).expect(200)).body).toEqual({ count: 1 });
      expect(await t.devices.countDocuments()).toBe(4);
    });

    it('answers 404 for a device that is not linked and keeps the device', async () => {
      const account = await createAccount(['d1']);
      const other = await createAccount(['d2'], 'other');
      expectError(await request(t.http).delete(`/api/accounts/${account}/devices/d2`), 404);
      expect(await t.devices.exists({ _id: d.d2._id })).not.toBeNull();
      expect(await storedIds(other)).toEqual([d.d2._id]);
    });

    it('answers 404 for an unknown account and deletes nothing', async () => {
      await createAccount(['d1']);
      expectError(await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}/devices/d1`), 404);
      expect(await t.devices.countDocuments()).toBe(5);
    });
  });

  describe('HEAD /api/accounts/:id/devices/rel/:fk', () => {
    it('answers 200 when linked and 404 when not, by ObjectId and by myId', async () => {
      const account = await createAccount(['d1']);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d1`).expect(200);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${d.d1._id}`).expect(200);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d2`).expect(404);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${UNKNOWN_ID}`).expect(404);
      await request(t.http).head(`/api/accounts/${UNKNOWN_ID}/devices/rel/d1`).expect(404);
    });
  });

  describe('POST /api/accounts/:id/devices/rel', () => {
    it('links many by ObjectId and myId, appending in the given order and skipping ones already linked', async () => {
      const account = await createAccount(['d2']);
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d4', d.d2._id, d.d1._id] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'acc', deviceIds: [d.d2._id, d.d4._id, d.d1._id] });
      expect(await storedIds(account)).toEqual([d.d2._id, d.d4._id, d.d1._id]);
    });

    it('answers the account unchanged for an empty list', async () => {
      const account = await createAccount(['d3']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices/rel`).send({ ids: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([d.d3._id]);
    });

    it('is all or nothing: an unknown id is a 422 naming ids[i], and deviceIds stay as they were', async () => {
      const account = await createAccount(['d5', 'd1']);
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d2', 'ghost', d.d3._id, UNKNOWN_ID] });
      expectError(res, 422, [
        { path: 'ids[1]', code: 'unknown_device' },
        { path: 'ids[3]', code: 'unknown_device' },
      ]);
      expect(await storedIds(account)).toEqual([d.d5._id, d.d1._id]);
    });

    it('answers 422 duplicate_device for an id listed twice (by ObjectId and myId) and links nothing', async () => {
      const account = await createAccount();
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d2', 'd3', d.d2._id] });
      expectError(res, 422, [{ path: 'ids[2]', code: 'duplicate_device' }]);
      expect(await storedIds(account)).toEqual([]);
    });

    it('answers 400 for a malformed id or a body that is not a list, and links nothing', async () => {
      const account = await createAccount(['d1']);
      expectError(
        await request(t.http)
          .post(`/api/accounts/${account}/devices/rel`)
          .send({ ids: ['d2', 'bad id!'] }),
        400,
        [{ path: 'ids[1]', code: 'invalid_device_id' }],
      );
      const notList = await request(t.http).post(`/api/accounts/${account}/devices/rel`).send({ ids: 'd2' });
      expect(notList.status).toBe(400);
      expect(notList.body.details.map((detail: { path: string }) => detail.path)).toContain('ids');
      expect(await storedIds(account)).toEqual([d.d1._id]);
    });

    it('answers 404 for an unknown account', async () => {
      expectError(
        await request(t.http)
          .post(`/api/accounts/${UNKNOWN_ID}/devices/rel`)
          .send({ ids: ['d1'] }),
        404,
      );
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 404 for an unknown account even when the ids are unknown too (bug: answered 422 unknown_device)', async () => {
      expectError(
        await request(t.http)
          .post(`/api/accounts/${UNKNOWN_ID}/devices/rel`)
          .send({ ids: ['ghost'] }),
        404,
      );
    });
  });

  describe('PUT /api/accounts/:id/devices/rel', () => {
    it('replaces the whole set in the given order and answers the account', async () => {
      const account = await createAccount(['d1', 'd2', 'd3']);
      const res = await request(t.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d5', d.d3._id, 'd1'] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'acc', deviceIds: [d.d5._id, d.d3._id, d.d1._id] });
      expect(await storedIds(account)).toEqual([d.d5._id, d.d3._id, d.d1._id]);
      const listed = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(listed.body).toEqual([d.d5, d.d3, d.d1]);
    });

    it('keeps a reversed order exactly', async () => {
      const account = await createAccount(['d1', 'd2', 'd3', 'd4', 'd5']);
      await request(t.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d5', 'd4', 'd3', 'd2', 'd1'] })
        .expect(200);
      expect(await storedIds(account)).toEqual([d.d5._id, d.d4._id, d.d3._id, d.d2._id, d.d1._id]);
    });

    it('empties the relation with an empty list and keeps the devices', async () => {
      const account = await createAccount(['d1', 'd2']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel`).send({ ids: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(account)).toEqual([]);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 422 for unknown or repeated ids and leaves deviceIds as they were', async () => {
      const account = await createAccount(['d2', 'd1']);
      expectError(
        await request(t.http)
          .put(`/api/accounts/${account}/devices/rel`)
          .send({ ids: ['d3', 'nobody'] }),
        422,
        [{ path: 'ids[1]', code: 'unknown_device' }],
      );
      expectError(
        await request(t.http)
          .put(`/api/accounts/${account}/devices/rel`)
          .send({ ids: ['d3', 'd3'] }),
        422,
        [{ path: 'ids[1]', code: 'duplicate_device' }],
      );
      expect(await storedIds(account)).toEqual([d.d2._id, d.d1._id]);
    });

    it('answers 404 for an unknown account', async () => {
      expectError(
        await request(t.http)
          .put(`/api/accounts/${UNKNOWN_ID}/devices/rel`)
          .send({ ids: ['d1'] }),
        404,
      );
    });

    it('answers 404 for an unknown account even when the ids are unknown too (bug: answered 422 unknown_device)', async () => {
      expectError(
        await request(t.http)
          .put(`/api/accounts/${UNKNOWN_ID}/devices/rel`)
          .send({ ids: ['ghost'] }),
        404,
      );
    });
  });

  describe('with maxDevicesPerAccount 5', () => {
    let limited: TestApp;

    beforeAll(async () => {
      limited = await createTestApp((builder) => builder.overrideProvider(relationConfig.KEY).useValue({ maxDevicesPerAccount: 5 }));
    });
    afterAll(() => limited.close());

    it('POST /api/accounts/:id/devices removes the new device again when the link is refused', async () => {
      const account = await createAccount(['d1', 'd2', 'd3', 'd4', 'd5'], 'full', limited);
      const res = await request(limited.http).post(`/api/accounts/${account}/devices`).send({ myId: 'one-too-many', deviceUID: 'UID-X' });
      expect(res.status).toBe(422);
      expect(res.body).toEqual({
        statusCode: 422,
        error: 'Unprocessable Entity',
        message: expect.any(String),
        details: [{ path: expect.any(String), code: 'too_many_devices', message: expect.any(String) }],
      });
      expect(await limited.devices.countDocuments({ myId: 'one-too-many' })).toBe(0);
      expect(await limited.devices.countDocuments()).toBe(5);
      expect(await storedIds(account, limited)).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, d.d5._id]);
    });

    it('POST /api/accounts/:id/devices still creates and links below the limit', async () => {
      const account = await createAccount(['d1', 'd2', 'd3', 'd4'], 'almost', limited);
      const res = await request(limited.http)
        .post(`/api/accounts/${account}/devices`)
        .send({ myId: 'fifth', deviceUID: 'UID-5' })
        .expect(201);
      expect(await storedIds(account, limited)).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, res.body._id]);
    });

    it('POST /api/accounts/:id/devices/rel answers 422 too_many_devices past the limit and links nothing', async () => {
      const extra = await createDevice(limited, 'd6');
      const account = await createAccount(['d1', 'd2', 'd3'], 'three', limited);
      const res = await request(limited.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d4', 'd5', 'd6'] });
      expectError(res, 422, [{ path: 'ids', code: 'too_many_devices' }]);
      expect(await storedIds(account, limited)).toEqual([d.d1._id, d.d2._id, d.d3._id]);
      const fits = await request(limited.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d1', 'd4', 'd5'] })
        .expect(200);
      expect(fits.body.deviceIds).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, d.d5._id]);
      expect(extra.myId).toBe('d6');
    });

    it('PUT /api/accounts/:id/devices/rel answers 422 too_many_devices for more ids than the limit', async () => {
      await createDevice(limited, 'd6');
      const account = await createAccount(['d1'], 'one', limited);
      const res = await request(limited.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'] });
      expectError(res, 422, [{ path: 'ids', code: 'too_many_devices' }]);
      expect(await storedIds(account, limited)).toEqual([d.d1._id]);
    });
  });

  describe('GET /api/devices/:id/accounts', () => {
    it('answers the accounts that reference the device, by ObjectId and by myId, with X-Total-Count', async () => {
      const first = await createAccount(['d1', 'd2'], 'first');
      await createAccount(['d3'], 'second');
      const third = await createAccount(['d2'], 'third');
      for (const id of [d.d2._id, 'd2']) {
        const res = await request(t.http).get(`/api/devices/${id}/accounts`).expect(200);
        expect(res.body.map((account: { _id: string }) => account._id)).toEqual([first, third]);
        expect(res.body[0]).toMatchObject({ name: 'first', deviceIds: [d.d1._id, d.d2._id] });
        expect(res.headers['x-total-count']).toBe('2');
      }
    });

    it('filters, orders, pages and includes like GET /api/accounts', async () => {
      await createAccount(['d1', 'd2'], 'b-first');
      await createAccount(['d2'], 'a-second');
      await createAccount(['d2', 'd3'], 'c-third');
      await createAccount(['d3'], 'no');
      const res = await request(t.http)
        .get(
          `/api/devices/d2/accounts?filter=${json({ where: { name: { neq: 'a-second' } }, order: 'name DESC', fields: ['name'], include: 'devices' })}`,
        )
        .expect(200);
      expect(res.body.map((account: { name: string }) => account.name)).toEqual(['c-third', 'b-first']);
      expect(res.body[0].devices).toEqual([d.d2, d.d3]);
      expect(res.body[0]).not.toHaveProperty('deviceIds');
      expect(res.headers['x-total-count']).toBe('2');
      const page = await request(t.http).get('/api/devices/d2/accounts?filter[order]=name&filter[limit]=1&filter[skip]=1').expect(200);
      expect(page.body.map((account: { name: string }) => account.name)).toEqual(['b-first']);
      expect(page.headers['x-total-count']).toBe('3');
    });

    it('answers an empty list for a device no account references', async () => {
      await createAccount(['d1']);
      const res = await request(t.http).get('/api/devices/d5/accounts').expect(200);
      expect(res.body).toEqual([]);
      expect(res.headers['x-total-count']).toBe('0');
    });

    it('answers 404 for an unknown device and 400 for a malformed id', async () => {
      expectError(await request(t.http).get(`/api/devices/${UNKNOWN_ID}/accounts`), 404);
      expectError(await request(t.http).get('/api/devices/ghost/accounts'), 404);
      expectError(await request(t.http).get(`/api/devices/${encodeURIComponent('bad id!')}/accounts`), 400, [
        { path: 'id', code: 'invalid_device_id' },
      ]);
    });

    it('answers 400 for a refused filter', async () => {
      expectError(await request(t.http).get('/api/devices/d1/accounts?filter[where][myId]=x'), 400, [
        { path: 'filter.where.myId', code: 'unknown_field' },
      ]);
    });
  });

  describe('GET /api/accounts?filter={"where":{"deviceIds":…}}', () => {
    it('finds the accounts holding a device by ObjectId and by myId', async () => {
      const holder = await createAccount(['d4', 'd1'], 'holder');
      await createAccount(['d2'], 'other');
      for (const id of [d.d1._id, 'd1']) {
        const res = await request(t.http)
          .get(`/api/accounts?filter=${json({ where: { deviceIds: id } })}`)
          .expect(200);
        expect(res.body.map((account: { _id: string }) => account._id)).toEqual([holder]);
      }
    });
  });

  describe('GET /api/devices/count', () => {
    it('counts every device, or those matching where (JSON or bracket form)', async () => {
      expect((await request(t.http).get('/api/devices/count').expect(200)).body).toEqual({ count: 5 });
      expect(
        (
          await request(t.http)
            .get(`/api/devices/count?where=${json({ myId: { inq: ['d1', 'd3', 'x'] } })}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 2 });
      expect(
        (
          await request(t.http)
            .get(`/api/devices/count?where[deviceUID][like]=${encodeURIComponent('d[45]$')}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 2 });
      expect((await request(t.http).get('/api/devices/count?where[_id]=d5').expect(200)).body).toEqual({ count: 1 });
    });

    it('answers 400 naming the where path', async () => {
      expectError(await request(t.http).get('/api/devices/count?where[name]=x'), 400, [{ path: 'where.name', code: 'unknown_field' }]);
      expectError(await request(t.http).get('/api/devices/count?where={'), 400, [{ path: 'where', code: 'invalid_json' }]);
    });
  });

  describe('GET /api/devices/findOne', () => {
    it('answers the first match, honouring where, order, skip and fields', async () => {
      expect((await request(t.http).get('/api/devices/findOne').expect(200)).body).toEqual(d.d1);
      expect(
        (
          await request(t.http)
            .get(`/api/devices/findOne?filter=${json({ order: 'myId DESC' })}`)
            .expect(200)
        ).body,
      ).toEqual(d.d5);
      expect((await request(t.http).get('/api/devices/findOne?filter[where][myId][gt]=d2&filter[skip]=1').expect(200)).body).toEqual(d.d4);
      expect((await request(t.http).get('/api/devices/findOne?filter[where][_id]=d3&filter[fields][0]=myId').expect(200)).body).toEqual({
        _id: d.d3._id,
        myId: 'd3',
      });
    });

    it('answers 404 when nothing matches', async () => {
      expectError(await request(t.http).get('/api/devices/findOne?filter[where][myId]=nobody'), 404);
    });
  });

  describe('GET /api/devices/:id/exists', () => {
    it('answers { exists } by ObjectId and by myId', async () => {
      expect((await request(t.http).get(`/api/devices/${d.d1._id}/exists`).expect(200)).body).toEqual({ exists: true });
      expect((await request(t.http).get('/api/devices/d1/exists').expect(200)).body).toEqual({ exists: true });
      expect((await request(t.http).get(`/api/devices/${UNKNOWN_ID}/exists`).expect(200)).body).toEqual({ exists: false });
      expect((await request(t.http).get('/api/devices/ghost/exists').expect(200)).body).toEqual({ exists: false });
    });

    it('answers 400 for a malformed id', async () => {
      expectError(await request(t.http).get('/api/devices/rel/exists'), 400, [{ path: 'id', code: 'invalid_device_id' }]);
    });
  });

  describe('HEAD /api/devices/:id', () => {
    it('answers 200 for an existing device and 404 for an unknown one, with no body', async () => {
      const found = await request(t.http).head(`/api/devices/${d.d2._id}`).expect(200);
      expect(found.text ?? '').toBe('');
      await request(t.http).head('/api/devices/d2').expect(200);
      await request(t.http).head(`/api/devices/${UNKNOWN_ID}`).expect(404);
      await request(t.http).head('/api/devices/ghost').expect(404);
      await request(t.http)
        .head(`/api/devices/${encodeURIComponent('bad id!')}`)
        .expect(400);
    });

    it('answers 404 once the device is deleted', async () => {
      await request(t.http).delete('/api/devices/d4').expect(200);
      await request(t.http).head('/api/devices/d4').expect(404);
      expect((await request(t.http).get(`/api/devices/${d.d4._id}/exists`).expect(200)).body).toEqual({ exists: false });
    });
  });

  describe('GET /api/accounts/count', () => {
    it('counts every account, or those matching where', async () => {
      await createAccount(['d1', 'd2'], 'kitchen');
      await createAccount(['d2'], 'garage');
      await createAccount([], 'attic');
      expect((await request(t.http).get('/api/accounts/count').expect(200)).body).toEqual({ count: 3 });
      expect((await request(t.http).get('/api/accounts/count?where[deviceIds]=d2').expect(200)).body).toEqual({ count: 2 });
      expect(
        (
          await request(t.http)
            .get(`/api/accounts/count?where=${json({ deviceIds: d.d1._id })}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 1 });
      expect(
        (
          await request(t.http)
            .get(`/api/accounts/count?where=${json({ name: { like: 'a' } })}`)
            .expect(200)
        ).body,
      ).toEqual({ count: 2 });
    });

    it('answers 400 naming the where path', async () => {
      expectError(await request(t.http).get('/api/accounts/count?where[myId]=x'), 400, [{ path: 'where.myId', code: 'unknown_field' }]);
    });
  });

  describe('GET /api/accounts/findOne', () => {
    it('answers the first match, with include when asked', async () => {
      const first = await createAccount(['d3'], 'first');
      const second = await createAccount(['d2', 'd1'], 'second');
      expect((await request(t.http).get('/api/accounts/findOne').expect(200)).body._id).toBe(first);
      const res = await request(t.http).get('/api/accounts/findOne?filter[where][deviceIds]=d1&include=devices').expect(200);
      expect(res.body).toMatchObject({ _id: second, name: 'second', deviceIds: [d.d2._id, d.d1._id] });
      expect(res.body.devices).toEqual([d.d2, d.d1]);
      expect(
        (
          await request(t.http)
            .get(`/api/accounts/findOne?filter=${json({ order: 'name DESC' })}`)
            .expect(200)
        ).body._id,
      ).toBe(second);
    });

    it('answers 404 when nothing matches', async () => {
      await createAccount(['d1']);
      expectError(await request(t.http).get('/api/accounts/findOne?filter[where][deviceIds]=d5'), 404);
    });
  });

  describe('GET /api/accounts/:id/exists', () => {
    it('answers { exists } and 400 for a malformed id', async () => {
      const account = await createAccount();
      expect((await request(t.http).get(`/api/accounts/${account}/exists`).expect(200)).body).toEqual({ exists: true });
      expect((await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/exists`).expect(200)).body).toEqual({ exists: false });
      expectError(await request(t.http).get('/api/accounts/acc/exists'), 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });
  });

  describe('HEAD /api/accounts/:id', () => {
    it('answers 200 for an existing account, 404 for an unknown or deleted one, 400 for a malformed id', async () => {
      const account = await createAccount();
      await request(t.http).head(`/api/accounts/${account}`).expect(200);
      await request(t.http).head(`/api/accounts/${UNKNOWN_ID}`).expect(404);
      await request(t.http).head('/api/accounts/nope').expect(400);
      await request(t.http).delete(`/api/accounts/${account}`).expect(200);
      await request(t.http).head(`/api/accounts/${account}`).expect(404);
    });
  });
});
