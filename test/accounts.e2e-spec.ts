import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request from 'supertest';
import { createAccount, createDevice, createDevices, type DeviceBody, seedDevices, storedIds } from './support/bodies.js';
import { type ExpectedDetail, expectError, json, where } from './support/http.js';
import { appUnderTest, createTestApp, type TestApp } from './support/test-app.js';

const OBJECT_ID = /^[0-9a-f]{24}$/;
const UNKNOWN_ID = '0123456789abcdef01234567';

/** `?include=` is read as a shorthand of `filter.include`, so its errors may name either path. */
const INCLUDE_PATH = expect.stringMatching(/^(filter\.)?include$/);

describe('Accounts', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  const storedAccount = (id: string) => t.accounts.findById(id).lean();

  describe('POST /api/accounts', () => {
    it('creates an account with only a name and an empty relation', async () => {
      const res = await request(t.http).post('/api/accounts').send({ name: 'Kitchen' }).expect(201);
      expect(res.body).toEqual({
        _id: expect.stringMatching(OBJECT_ID),
        name: 'Kitchen',
        deviceIds: [],
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const stored = await storedAccount(res.body._id);
      expect(stored).toMatchObject({ name: 'Kitchen', deviceIds: [] });
    });

    it('stores deviceIds given as ObjectIds or myIds as ObjectIds, in the given order', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const d3 = await createDevice(t.http, 'd3');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'mixed', deviceIds: ['d3', d1._id, 'd2'] })
        .expect(201);
      expect(res.body.deviceIds).toEqual([d3._id, d1._id, d2._id]);
      const stored = await storedAccount(res.body._id);
      expect(stored?.deviceIds.every((id) => id instanceof Types.ObjectId)).toBe(true);
      expect(stored?.deviceIds.map(String)).toEqual([d3._id, d1._id, d2._id]);
    });

    it('accepts a name of exactly 200 characters', async () => {
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'n'.repeat(200) })
        .expect(201);
      expect((await storedAccount(res.body._id))?.name).toHaveLength(200);
    });

    it.each<[string, Record<string, unknown>, ExpectedDetail]>([
      ['a missing name', {}, { path: 'name', code: 'isString' }],
      ['an empty name', { name: '' }, { path: 'name', code: 'isLength' }],
      ['a name longer than 200 characters', { name: 'n'.repeat(201) }, { path: 'name', code: 'isLength' }],
      ['a numeric name', { name: 7 }, { path: 'name', code: 'isString' }],
      ['a name that is a query operator', { name: { $gt: '' } }, { path: 'name', code: 'isString' }],
      ['deviceIds that is not an array', { name: 'a', deviceIds: 'd1' }, { path: 'deviceIds', code: 'isArray' }],
      ['a deviceIds entry that is not a string', { name: 'a', deviceIds: [5] }, { path: 'deviceIds', code: 'isString' }],
      ['an unknown property', { name: 'a', owner: 'x' }, { path: 'owner', code: 'unknown_property' }],
    ])('answers 400 naming the field for %s, and writes nothing', async (_case, body, detail) => {
      const res = await request(t.http).post('/api/accounts').send(body).expect(400);
      expectError(res, 400, { including: [detail] });
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 400 naming each malformed deviceIds entry by index, and writes nothing', async () => {
      await createDevice(t.http, 'd1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: ['d1', 'bad id!', 'rel', 'x'.repeat(129)] })
        .expect(400);
      expectError(res, 400, [
        { path: 'deviceIds[1]', code: 'invalid_device_id' },
        { path: 'deviceIds[2]', code: 'invalid_device_id' },
        { path: 'deviceIds[3]', code: 'invalid_device_id' },
      ]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 400 for a body that is not JSON, without a stack', async () => {
      const res = await request(t.http).post('/api/accounts').set('content-type', 'application/json').send('{"name":').expect(400);
      expectError(res, 400);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 422 naming unknown devices by index, and writes nothing', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: [d1._id, 'ghost', UNKNOWN_ID] })
        .expect(422);
      expectError(res, 422, [
        { path: 'deviceIds[1]', code: 'unknown_device' },
        { path: 'deviceIds[2]', code: 'unknown_device' },
      ]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it.each([
      ['the same myId twice', (d: DeviceBody) => [d.myId, d.myId]],
      ['the same ObjectId twice', (d: DeviceBody) => [d._id, d._id]],
      ['the ObjectId and the myId of one device', (d: DeviceBody) => [d._id, d.myId]],
      ['the myId and the ObjectId of one device', (d: DeviceBody) => [d.myId, d._id]],
    ])('answers 422 duplicate_device for %s, and writes nothing', async (_case, ids) => {
      const other = await createDevice(t.http, 'other');
      const device = await createDevice(t.http, 'twice');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: [other._id, ...ids(device)] })
        .expect(422);
      expectError(res, 422, [{ path: 'deviceIds[2]', code: 'duplicate_device' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('lists unknown and duplicate devices together in one 422', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: ['d1', 'ghost', d1._id] })
        .expect(422);
      expectError(res, 422, [
        { path: 'deviceIds[1]', code: 'unknown_device' },
        { path: 'deviceIds[2]', code: 'duplicate_device' },
      ]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('GET /api/accounts', () => {
    it('lists accounts in creation order with X-Total-Count', async () => {
      await createAccount(t.http, [], 'first');
      await createAccount(t.http, [], 'second');
      await createAccount(t.http, [], 'third');
      const res = await request(t.http).get('/api/accounts').expect(200);
      expect(res.headers['x-total-count']).toBe('3');
      expect(res.body.map((account: { name: string }) => account.name)).toEqual(['first', 'second', 'third']);
      expect(res.body[0]).not.toHaveProperty('devices');
    });

    it('with include=devices adds each account its devices in deviceIds order and keeps deviceIds', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const d3 = await createDevice(t.http, 'd3');
      await createAccount(t.http, [d3._id, d1._id, d2._id], 'a');
      await createAccount(t.http, ['d2', 'd3'], 'b');
      await createAccount(t.http, [], 'c');
      const res = await request(t.http).get('/api/accounts?include=devices').expect(200);
      expect(res.body.map((account: { deviceIds: string[] }) => account.deviceIds)).toEqual([
        [d3._id, d1._id, d2._id],
        [d2._id, d3._id],
        [],
      ]);
      expect(res.body.map((account: { devices: DeviceBody[] }) => account.devices)).toEqual([[d3, d1, d2], [d2, d3], []]);
    });

    it.each(['bad', '', 'Devices', 'devices,accounts'])('answers 400 naming include for include=%s', async (value) => {
      const res = await request(t.http)
        .get(`/api/accounts?include=${encodeURIComponent(value)}`)
        .expect(400);
      expectError(res, 400, { including: [{ path: INCLUDE_PATH }] });
    });
  });

  describe('GET /api/accounts/:id', () => {
    it('reads an account', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'one');
      const res = await request(t.http).get(`/api/accounts/${account}`).expect(200);
      expect(res.body).toEqual({
        _id: account,
        name: 'one',
        deviceIds: [d1._id],
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
    });

    it('with include=devices returns the devices in deviceIds order [d3, d1, d2] and keeps deviceIds', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const d3 = await createDevice(t.http, 'd3');
      const account = await createAccount(t.http, [d3._id, d1._id, d2._id], 'ordered');
      const res = await request(t.http).get(`/api/accounts/${account}?include=devices`).expect(200);
      expect(res.body.deviceIds).toEqual([d3._id, d1._id, d2._id]);
      expect(res.body.devices).toEqual([d3, d1, d2]);
      expect(await storedIds(t, account)).toEqual([d3._id, d1._id, d2._id]);
    });

    it('with include=devices returns an empty devices array for an account without devices', async () => {
      const account = await createAccount(t.http, [], 'empty');
      const res = await request(t.http).get(`/api/accounts/${account}?include=devices`).expect(200);
      expect(res.body).toMatchObject({ deviceIds: [], devices: [] });
    });

    it.each(['bad', '', 'DEVICES'])('answers 400 naming include for include=%s', async (value) => {
      const account = await createAccount(t.http, [], 'a');
      const res = await request(t.http).get(`/api/accounts/${account}?include=${value}`).expect(400);
      expectError(res, 400, { including: [{ path: INCLUDE_PATH }] });
    });

    it.each(['123', 'not-an-id', 'z'.repeat(24), `${UNKNOWN_ID}0`])('answers 400 for the malformed id %s', async (id) => {
      const res = await request(t.http).get(`/api/accounts/${id}`).expect(400);
      expectError(res, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });

    it('answers 404 naming an unknown id', async () => {
      const res = await request(t.http).get(`/api/accounts/${UNKNOWN_ID}`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain(UNKNOWN_ID);
    });
  });

  describe('PATCH /api/accounts/:id', () => {
    it('changes only the name when only the name is given', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'old');
      const res = await request(t.http).patch(`/api/accounts/${account}`).send({ name: 'new' }).expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'new', deviceIds: [d1._id] });
      expect(await storedAccount(account)).toMatchObject({ name: 'new' });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it('replaces the whole relation, in the given order, when deviceIds is given', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const d3 = await createDevice(t.http, 'd3');
      const account = await createAccount(t.http, ['d1', 'd2'], 'acc');
      const res = await request(t.http)
        .patch(`/api/accounts/${account}`)
        .send({ deviceIds: ['d3', d1._id] })
        .expect(200);
      expect(res.body).toMatchObject({ name: 'acc', deviceIds: [d3._id, d1._id] });
      expect(await storedIds(t, account)).toEqual([d3._id, d1._id]);
      expect(await t.devices.exists({ _id: d2._id })).not.toBeNull();
    });

    it('empties the relation for deviceIds: []', async () => {
      await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'acc');
      const res = await request(t.http).patch(`/api/accounts/${account}`).send({ deviceIds: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(t, account)).toEqual([]);
    });

    it('changes nothing for an empty body', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'same');
      const res = await request(t.http).patch(`/api/accounts/${account}`).send({}).expect(200);
      expect(res.body).toMatchObject({ name: 'same', deviceIds: [d1._id] });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it.each<[string, Record<string, unknown>, ExpectedDetail]>([
      ['a name longer than 200 characters', { name: 'n'.repeat(201) }, { path: 'name', code: 'isLength' }],
      ['an empty name', { name: '' }, { path: 'name', code: 'isLength' }],
      ['a null name', { name: null }, { path: 'name' }],
      ['an unknown property', { name: 'x', deviceIDs: [] }, { path: 'deviceIDs', code: 'unknown_property' }],
      ['deviceIds that is not an array', { deviceIds: 'd2' }, { path: 'deviceIds', code: 'isArray' }],
      [
        'a malformed deviceIds entry',
        { name: 'x', deviceIds: ['d2', 'no spaces allowed'] },
        { path: 'deviceIds[1]', code: 'invalid_device_id' },
      ],
    ])('answers 400 for %s and changes nothing', async (_case, body, detail) => {
      const d1 = await createDevice(t.http, 'd1');
      await createDevice(t.http, 'd2');
      const account = await createAccount(t.http, ['d1'], 'keep');
      const res = await request(t.http).patch(`/api/accounts/${account}`).send(body).expect(400);
      expectError(res, 400, { including: [detail] });
      expect(await storedAccount(account)).toMatchObject({ name: 'keep' });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it('answers 400 for deviceIds: null and changes nothing (bug: null reached resolveDeviceIds as a list and answered 500)', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'keep');
      const res = await request(t.http).patch(`/api/accounts/${account}`).send({ name: 'changed', deviceIds: null });
      expect(res.status).toBe(400);
      expectError(res, 400, { including: [{ path: 'deviceIds' }] });
      expect(await storedAccount(account)).toMatchObject({ name: 'keep' });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it.each([
      ['an unknown device', (_d: DeviceBody) => ['d1', 'ghost'], { path: 'deviceIds[1]', code: 'unknown_device' }],
      ['the ObjectId and myId of one device', (d: DeviceBody) => [d._id, 'd1'], { path: 'deviceIds[1]', code: 'duplicate_device' }],
    ])('answers 422 for %s and changes neither name nor deviceIds', async (_case, ids, detail) => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const account = await createAccount(t.http, ['d2'], 'keep');
      const res = await request(t.http)
        .patch(`/api/accounts/${account}`)
        .send({ name: 'changed', deviceIds: ids(d1) })
        .expect(422);
      expectError(res, 422, [detail]);
      expect(await storedAccount(account)).toMatchObject({ name: 'keep' });
      expect(await storedIds(t, account)).toEqual([d2._id]);
    });

    it('answers 404 for an unknown account and 400 for a malformed id', async () => {
      const notFound = await request(t.http).patch(`/api/accounts/${UNKNOWN_ID}`).send({ name: 'x' }).expect(404);
      expectError(notFound, 404);
      const malformed = await request(t.http).patch('/api/accounts/nope').send({ name: 'x' }).expect(400);
      expectError(malformed, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('PUT /api/accounts/:id', () => {
    it('replaces the name and the relation', async () => {
      await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const d3 = await createDevice(t.http, 'd3');
      const account = await createAccount(t.http, ['d1'], 'old');
      const res = await request(t.http)
        .put(`/api/accounts/${account}`)
        .send({ name: 'new', deviceIds: ['d3', d2._id] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'new', deviceIds: [d3._id, d2._id] });
      expect(await storedAccount(account)).toMatchObject({ name: 'new' });
      expect(await storedIds(t, account)).toEqual([d3._id, d2._id]);
    });

    it('empties the relation when deviceIds is missing, and the devices stay', async () => {
      await createDevice(t.http, 'd1');
      await createDevice(t.http, 'd2');
      const account = await createAccount(t.http, ['d1', 'd2'], 'full');
      const res = await request(t.http).put(`/api/accounts/${account}`).send({ name: 'full' }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(t, account)).toEqual([]);
      expect(await t.devices.countDocuments()).toBe(2);
    });

    it('answers 400 when the name is missing, and changes nothing', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'keep');
      const res = await request(t.http).put(`/api/accounts/${account}`).send({ deviceIds: [] }).expect(400);
      expectError(res, 400, { including: [{ path: 'name', code: 'isString' }] });
      expect(await storedAccount(account)).toMatchObject({ name: 'keep' });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it('answers 422 for an unknown device, and changes nothing', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const account = await createAccount(t.http, ['d1'], 'keep');
      const res = await request(t.http)
        .put(`/api/accounts/${account}`)
        .send({ name: 'new', deviceIds: [UNKNOWN_ID] })
        .expect(422);
      expectError(res, 422, [{ path: 'deviceIds[0]', code: 'unknown_device' }]);
      expect(await storedAccount(account)).toMatchObject({ name: 'keep' });
      expect(await storedIds(t, account)).toEqual([d1._id]);
    });

    it('answers 404 for an unknown account and 400 for a malformed id', async () => {
      const notFound = await request(t.http).put(`/api/accounts/${UNKNOWN_ID}`).send({ name: 'x' }).expect(404);
      expectError(notFound, 404);
      const malformed = await request(t.http).put('/api/accounts/nope').send({ name: 'x' }).expect(400);
      expectError(malformed, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('DELETE /api/accounts/:id', () => {
    it('answers { count: 1 }, removes the account and keeps its devices', async () => {
      const d1 = await createDevice(t.http, 'd1');
      const d2 = await createDevice(t.http, 'd2');
      const doomed = await createAccount(t.http, ['d1', 'd2'], 'doomed');
      const other = await createAccount(t.http, ['d2'], 'other');
      const res = await request(t.http).delete(`/api/accounts/${doomed}`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.accounts.exists({ _id: doomed })).toBeNull();
      expect(await t.devices.countDocuments({ _id: { $in: [d1._id, d2._id] } })).toBe(2);
      expect(await storedIds(t, other)).toEqual([d2._id]);
      await request(t.http).get(`/api/accounts/${doomed}`).expect(404);
      await request(t.http).get('/api/devices/d1').expect(200);
    });

    it('answers 404 for an unknown account, and for a second delete', async () => {
      const account = await createAccount(t.http, [], 'once');
      await request(t.http).delete(`/api/accounts/${account}`).expect(200);
      const again = await request(t.http).delete(`/api/accounts/${account}`).expect(404);
      expectError(again, 404);
      const unknown = await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}`).expect(404);
      expectError(unknown, 404);
    });

    it('answers 400 for a malformed id and deletes nothing', async () => {
      await createAccount(t.http, [], 'survivor');
      const res = await request(t.http).delete('/api/accounts/survivor').expect(400);
      expectError(res, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(1);
    });
  });

  describe('with five devices', () => {
    let d: Record<'d1' | 'd2' | 'd3' | 'd4' | 'd5', DeviceBody>;

    beforeEach(async () => {
      d = await createDevices(t.http, ['d1', 'd2', 'd3', 'd4', 'd5']);
    });

    describe('GET /api/accounts?filter={"where":{"deviceIds":…}}', () => {
      it('finds the accounts holding a device by ObjectId and by myId', async () => {
        const holder = await createAccount(t.http, ['d4', 'd1'], 'holder');
        await createAccount(t.http, ['d2'], 'other');
        for (const id of [d.d1._id, 'd1']) {
          const res = await request(t.http)
            .get(`/api/accounts?filter=${json({ where: { deviceIds: id } })}`)
            .expect(200);
          expect(res.body.map((account: { _id: string }) => account._id)).toEqual([holder]);
        }
      });
    });

    describe('GET /api/accounts/count', () => {
      it('counts every account, or those matching where', async () => {
        await createAccount(t.http, ['d1', 'd2'], 'kitchen');
        await createAccount(t.http, ['d2'], 'garage');
        await createAccount(t.http, [], 'attic');
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
        const first = await createAccount(t.http, ['d3'], 'first');
        const second = await createAccount(t.http, ['d2', 'd1'], 'second');
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
        await createAccount(t.http, ['d1']);
        expectError(await request(t.http).get('/api/accounts/findOne?filter[where][deviceIds]=d5'), 404);
      });
    });

    describe('GET /api/accounts/:id/exists', () => {
      it('answers { exists } and 400 for a malformed id', async () => {
        const account = await createAccount(t.http);
        expect((await request(t.http).get(`/api/accounts/${account}/exists`).expect(200)).body).toEqual({ exists: true });
        expect((await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/exists`).expect(200)).body).toEqual({ exists: false });
        expectError(await request(t.http).get('/api/accounts/acc/exists'), 400, [{ path: 'id', code: 'invalid_object_id' }]);
      });
    });

    describe('HEAD /api/accounts/:id', () => {
      it('answers 200 for an existing account, 404 for an unknown or deleted one, 400 for a malformed id', async () => {
        const account = await createAccount(t.http);
        await request(t.http).head(`/api/accounts/${account}`).expect(200);
        await request(t.http).head(`/api/accounts/${UNKNOWN_ID}`).expect(404);
        await request(t.http).head('/api/accounts/nope').expect(400);
        await request(t.http).delete(`/api/accounts/${account}`).expect(200);
        await request(t.http).head(`/api/accounts/${account}`).expect(404);
      });
    });
  });
});

describe('Accounts with a limit of 3 devices per account', () => {
  const app = appUnderTest({ config: { relation: { maxDevicesPerAccount: 3 } } });
  let ids: string[];

  beforeEach(async () => {
    ids = await seedDevices(app.t, ['d1', 'd2', 'd3', 'd4']);
  });

  const tooMany = [{ path: 'deviceIds', code: 'too_many_devices' }];

  describe('POST /api/accounts', () => {
    it('accepts exactly the limit', async () => {
      const res = await request(app.t.http)
        .post('/api/accounts')
        .send({ name: 'full', deviceIds: ids.slice(0, 3) })
        .expect(201);
      expect((await app.t.accounts.findById(res.body._id).lean())?.deviceIds.map(String)).toEqual(ids.slice(0, 3));
    });

    it('answers 422 too_many_devices over the limit, and writes nothing', async () => {
      const res = await request(app.t.http)
        .post('/api/accounts')
        .send({ name: 'over', deviceIds: ['d1', 'd2', 'd3', 'd4'] })
        .expect(422);
      expectError(res, 422, tooMany);
      expect(await app.t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('PATCH /api/accounts/:id', () => {
    it('answers 422 too_many_devices over the limit, and changes nothing', async () => {
      const account = await app.t.accounts.create({ name: 'keep', deviceIds: [ids[0]] });
      const res = await request(app.t.http).patch(`/api/accounts/${account._id}`).send({ name: 'changed', deviceIds: ids }).expect(422);
      expectError(res, 422, tooMany);
      const stored = await app.t.accounts.findById(account._id).lean();
      expect(stored?.name).toBe('keep');
      expect(stored?.deviceIds.map(String)).toEqual([ids[0]]);
    });
  });

  describe('PUT /api/accounts/:id', () => {
    it('answers 422 too_many_devices over the limit, and changes nothing', async () => {
      const account = await app.t.accounts.create({ name: 'keep', deviceIds: [ids[1]] });
      const res = await request(app.t.http).put(`/api/accounts/${account._id}`).send({ name: 'changed', deviceIds: ids }).expect(422);
      expectError(res, 422, tooMany);
      const stored = await app.t.accounts.findById(account._id).lean();
      expect(stored?.name).toBe('keep');
      expect(stored?.deviceIds.map(String)).toEqual([ids[1]]);
    });
  });
});

describe('updateAll', () => {
  const app = appUnderTest();

  const accountsUpdate = (query: object | string, body: object) => request(app.t.http).post('/api/accounts/update').query(query).send(body);
  const accountsNow = () => app.t.accounts.find({}, { rev: 1, name: 1, deviceIds: 1, updatedAt: 1 }).sort({ _id: 1 }).lean();

  describe('POST /api/accounts/update?where=', () => {
    beforeEach(async () => {
      for (const myId of ['a', 'b', 'c']) await app.api.device(myId);
      await app.api.account('Kitchen', ['a']);
      await app.api.account('Kitchen', ['b']);
      await app.api.account('Hall', ['a', 'c']);
    });

    it('renames every account where matches, answers how many, and leaves the others', async () => {
      await accountsUpdate(where({ name: 'Kitchen' }), { name: 'Cuisine' }).expect(200, { count: 2 });
      expect((await accountsNow()).map((account) => account.name)).toEqual(['Cuisine', 'Cuisine', 'Hall']);
    });

    it('sets deviceIds, given as ObjectIds or myIds, on every account matched, in the order given', async () => {
      const c = (await app.t.devices.findOne({ myId: 'c' }).lean())!;
      await accountsUpdate(where({ name: 'Kitchen' }), { deviceIds: [c._id.toHexString(), 'a'] }).expect(200, { count: 2 });
      const accounts = await accountsNow();
      const ids = await Promise.all(['c', 'a'].map(async (myId) => String((await app.t.devices.findOne({ myId }).lean())!._id)));
      expect(accounts.map((account) => account.deviceIds.map(String))).toEqual([ids, ids, [ids[1], ids[0]]]);
    });

    it('finds the accounts holding a device named by its myId in where', async () => {
      await accountsUpdate(where({ deviceIds: 'a' }), { name: 'Has a' }).expect(200, { count: 2 });
      expect((await accountsNow()).map((account) => account.name)).toEqual(['Has a', 'Kitchen', 'Has a']);
    });

    it.each([
      ['an unknown device', 422, 'deviceIds[1]', 'unknown_device', ['a', 'nowhere']],
      ['a device twice', 422, 'deviceIds[2]', 'duplicate_device', ['a', 'b', 'a']],
      ['a malformed id', 400, 'deviceIds[1]', 'invalid_device_id', ['a', 'has space']],
      ['more devices than the limit', 422, 'deviceIds', 'too_many_devices', Array.from({ length: 10_001 }, () => 'a')],
    ])('answers %s in deviceIds with a %d naming it, and changes nothing', async (_case, status, path, code, deviceIds) => {
      const before = await accountsNow();
      expectError(await accountsUpdate({ all: 'true' }, { deviceIds }), status, { including: [{ path, code }] });
      expect(await accountsNow()).toEqual(before);
    });

    it('answers 400 naming where when none is given, unless all=true', async () => {
      const before = await accountsNow();
      expectError(await accountsUpdate({}, { name: 'Everyone' }), 400, { including: [{ path: 'where', code: 'required' }] });
      expect(await accountsNow()).toEqual(before);
      await accountsUpdate({ all: 'true' }, { name: 'Everyone' }).expect(200, { count: 3 });
      expect((await accountsNow()).map((account) => account.name)).toEqual(['Everyone', 'Everyone', 'Everyone']);
    });

    it('validates the body as PATCH does', async () => {
      expectError(await accountsUpdate({ all: 'true' }, { name: '' }), 400, { including: [{ path: 'name', code: 'isLength' }] });
      expectError(await accountsUpdate({ all: 'true' }, { owner: 'x' }), 400, { including: [{ path: 'owner', code: 'unknown_property' }] });
    });
  });
});

describe('updateAll of accounts racing the deletion of a device it sets', () => {
  const app = appUnderTest({}, { listening: true });

  it('leaves no account referencing the deleted device, over 10 rounds', async () => {
    await app.api.device('keeper');
    for (const name of ['x', 'x', 'x', 'y']) await app.api.account(name, ['keeper']);
    for (let round = 0; round < 10; round += 1) {
      const device = await app.api.device(`doomed-${round}`);
      const update = () =>
        request(app.server)
          .post('/api/accounts/update')
          .query(where({ name: 'x' }))
          .send({ deviceIds: ['keeper', round % 2 === 0 ? device._id : device.myId] });
      const remove = () => request(app.server).delete(`/api/devices/${device._id}`);
      const responses = await Promise.all(round % 2 === 0 ? [update(), remove()] : [remove(), update()]);
      for (const res of responses) expect([200, 422]).toContain(res.status);
      expect(await app.t.accounts.countDocuments({ deviceIds: device._id })).toBe(0);
    }
    const keeper = (await app.t.devices.findOne({ myId: 'keeper' }).lean())!._id;
    for (const account of await app.t.accounts.find().lean()) expect(account.deviceIds.map(String)).toEqual([String(keeper)]);
  });
});
