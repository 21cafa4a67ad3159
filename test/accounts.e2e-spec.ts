import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request from 'supertest';
import { getConfigToken } from '@nestjs/config';
import { type DeviceBody } from './support/bodies.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const OBJECT_ID = /^[0-9a-f]{24}$/;
const UNKNOWN_ID = '0123456789abcdef01234567';
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 422: 'Unprocessable Entity' };

interface Detail {
  path: unknown;
  code?: unknown;
  message?: unknown;
}

/** `?include=` is read as a shorthand of `filter.include`, so its errors may name either path. */
const INCLUDE_PATH = expect.stringMatching(/^(filter\.)?include$/);

/** The DESIGN.md error shape, exactly: no other keys, `details` only when given. */
function expectError(body: unknown, statusCode: number, details?: Detail[]) {
  const expected: Record<string, unknown> = { statusCode, error: STATUS_TEXT[statusCode], message: expect.any(String) };
  if (details) expected.details = details.map((detail) => ({ message: expect.any(String), ...detail }));
  expect(body).toEqual(expected);
}

/** The DESIGN.md error shape, with `details` containing at least the given entries. */
function expectErrorWith(body: { details?: unknown }, statusCode: number, details: Detail[]) {
  expect(body).toEqual({ statusCode, error: STATUS_TEXT[statusCode], message: expect.any(String), details: expect.any(Array) });
  for (const detail of body.details as Detail[]) {
    expect(detail).toEqual({ path: expect.any(String), code: expect.any(String), message: expect.any(String) });
  }
  expect(body.details).toEqual(expect.arrayContaining(details.map((detail) => expect.objectContaining(detail))));
}

describe('Accounts', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  const createDevice = (myId: string): Promise<DeviceBody> =>
    request(t.http)
      .post('/api/devices')
      .send({ myId, deviceUID: `uid-${myId}` })
      .expect(201)
      .then((res) => res.body);

  const createAccount = (name: string, deviceIds?: string[]) =>
    request(t.http)
      .post('/api/accounts')
      .send({ name, deviceIds })
      .expect(201)
      .then((res) => res.body as { _id: string; name: string; deviceIds: string[] });

  const storedAccount = (id: string) => t.accounts.findById(id).lean();
  const storedIds = async (id: string) => (await storedAccount(id))?.deviceIds.map(String);

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
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const d3 = await createDevice('d3');
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

    it.each<[string, Record<string, unknown>, Detail]>([
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
      expectErrorWith(res.body, 400, [detail]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 400 naming each malformed deviceIds entry by index, and writes nothing', async () => {
      await createDevice('d1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: ['d1', 'bad id!', 'rel', 'x'.repeat(129)] })
        .expect(400);
      expectError(res.body, 400, [
        { path: 'deviceIds[1]', code: 'invalid_device_id' },
        { path: 'deviceIds[2]', code: 'invalid_device_id' },
        { path: 'deviceIds[3]', code: 'invalid_device_id' },
      ]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 400 for a body that is not JSON, without a stack', async () => {
      const res = await request(t.http).post('/api/accounts').set('content-type', 'application/json').send('{"name":').expect(400);
      expectError(res.body, 400);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('answers 422 naming unknown devices by index, and writes nothing', async () => {
      const d1 = await createDevice('d1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: [d1._id, 'ghost', UNKNOWN_ID] })
        .expect(422);
      expectError(res.body, 422, [
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
      const other = await createDevice('other');
      const device = await createDevice('twice');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: [other._id, ...ids(device)] })
        .expect(422);
      expectError(res.body, 422, [{ path: 'deviceIds[2]', code: 'duplicate_device' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });

    it('lists unknown and duplicate devices together in one 422', async () => {
      const d1 = await createDevice('d1');
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'a', deviceIds: ['d1', 'ghost', d1._id] })
        .expect(422);
      expectError(res.body, 422, [
        { path: 'deviceIds[1]', code: 'unknown_device' },
        { path: 'deviceIds[2]', code: 'duplicate_device' },
      ]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('GET /api/accounts', () => {
    it('lists accounts in creation order with X-Total-Count', async () => {
      await createAccount('first');
      await createAccount('second');
      await createAccount('third');
      const res = await request(t.http).get('/api/accounts').expect(200);
      expect(res.headers['x-total-count']).toBe('3');
      expect(res.body.map((account: { name: string }) => account.name)).toEqual(['first', 'second', 'third']);
      expect(res.body[0]).not.toHaveProperty('devices');
    });

    it('with include=devices adds each account its devices in deviceIds order and keeps deviceIds', async () => {
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const d3 = await createDevice('d3');
      await createAccount('a', [d3._id, d1._id, d2._id]);
      await createAccount('b', ['d2', 'd3']);
      await createAccount('c');
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
      expectErrorWith(res.body, 400, [{ path: INCLUDE_PATH }]);
    });
  });

  describe('GET /api/accounts/:id', () => {
    it('reads an account', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('one', ['d1']);
      const res = await request(t.http).get(`/api/accounts/${account._id}`).expect(200);
      expect(res.body).toEqual({
        _id: account._id,
        name: 'one',
        deviceIds: [d1._id],
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
    });

    it('with include=devices returns the devices in deviceIds order [d3, d1, d2] and keeps deviceIds', async () => {
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const d3 = await createDevice('d3');
      const account = await createAccount('ordered', [d3._id, d1._id, d2._id]);
      const res = await request(t.http).get(`/api/accounts/${account._id}?include=devices`).expect(200);
      expect(res.body.deviceIds).toEqual([d3._id, d1._id, d2._id]);
      expect(res.body.devices).toEqual([d3, d1, d2]);
      expect(await storedIds(account._id)).toEqual([d3._id, d1._id, d2._id]);
    });

    it('with include=devices returns an empty devices array for an account without devices', async () => {
      const account = await createAccount('empty');
      const res = await request(t.http).get(`/api/accounts/${account._id}?include=devices`).expect(200);
      expect(res.body).toMatchObject({ deviceIds: [], devices: [] });
    });

    it.each(['bad', '', 'DEVICES'])('answers 400 naming include for include=%s', async (value) => {
      const account = await createAccount('a');
      const res = await request(t.http).get(`/api/accounts/${account._id}?include=${value}`).expect(400);
      expectErrorWith(res.body, 400, [{ path: INCLUDE_PATH }]);
    });

    it.each(['123', 'not-an-id', 'z'.repeat(24), `${UNKNOWN_ID}0`])('answers 400 for the malformed id %s', async (id) => {
      const res = await request(t.http).get(`/api/accounts/${id}`).expect(400);
      expectError(res.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });

    it('answers 404 naming an unknown id', async () => {
      const res = await request(t.http).get(`/api/accounts/${UNKNOWN_ID}`).expect(404);
      expectError(res.body, 404);
      expect(res.body.message).toContain(UNKNOWN_ID);
    });
  });

  describe('PATCH /api/accounts/:id', () => {
    it('changes only the name when only the name is given', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('old', ['d1']);
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send({ name: 'new' }).expect(200);
      expect(res.body).toMatchObject({ _id: account._id, name: 'new', deviceIds: [d1._id] });
      expect(await storedAccount(account._id)).toMatchObject({ name: 'new' });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it('replaces the whole relation, in the given order, when deviceIds is given', async () => {
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const d3 = await createDevice('d3');
      const account = await createAccount('acc', ['d1', 'd2']);
      const res = await request(t.http)
        .patch(`/api/accounts/${account._id}`)
        .send({ deviceIds: ['d3', d1._id] })
        .expect(200);
      expect(res.body).toMatchObject({ name: 'acc', deviceIds: [d3._id, d1._id] });
      expect(await storedIds(account._id)).toEqual([d3._id, d1._id]);
      expect(await t.devices.exists({ _id: d2._id })).not.toBeNull();
    });

    it('empties the relation for deviceIds: []', async () => {
      await createDevice('d1');
      const account = await createAccount('acc', ['d1']);
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send({ deviceIds: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(account._id)).toEqual([]);
    });

    it('changes nothing for an empty body', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('same', ['d1']);
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send({}).expect(200);
      expect(res.body).toMatchObject({ name: 'same', deviceIds: [d1._id] });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it.each<[string, Record<string, unknown>, Detail]>([
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
      const d1 = await createDevice('d1');
      await createDevice('d2');
      const account = await createAccount('keep', ['d1']);
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send(body).expect(400);
      expectErrorWith(res.body, 400, [detail]);
      expect(await storedAccount(account._id)).toMatchObject({ name: 'keep' });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it('answers 400 for deviceIds: null and changes nothing (bug: null reached resolveDeviceIds as a list and answered 500)', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('keep', ['d1']);
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send({ name: 'changed', deviceIds: null });
      expect(res.status).toBe(400);
      expectErrorWith(res.body, 400, [{ path: 'deviceIds' }]);
      expect(await storedAccount(account._id)).toMatchObject({ name: 'keep' });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it.each([
      ['an unknown device', (_d: DeviceBody) => ['d1', 'ghost'], { path: 'deviceIds[1]', code: 'unknown_device' }],
      ['the ObjectId and myId of one device', (d: DeviceBody) => [d._id, 'd1'], { path: 'deviceIds[1]', code: 'duplicate_device' }],
    ])('answers 422 for %s and changes neither name nor deviceIds', async (_case, ids, detail) => {
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const account = await createAccount('keep', ['d2']);
      const res = await request(t.http)
        .patch(`/api/accounts/${account._id}`)
        .send({ name: 'changed', deviceIds: ids(d1) })
        .expect(422);
      expectError(res.body, 422, [detail]);
      expect(await storedAccount(account._id)).toMatchObject({ name: 'keep' });
      expect(await storedIds(account._id)).toEqual([d2._id]);
    });

    it('answers 404 for an unknown account and 400 for a malformed id', async () => {
      const notFound = await request(t.http).patch(`/api/accounts/${UNKNOWN_ID}`).send({ name: 'x' }).expect(404);
      expectError(notFound.body, 404);
      const malformed = await request(t.http).patch('/api/accounts/nope').send({ name: 'x' }).expect(400);
      expectError(malformed.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('PUT /api/accounts/:id', () => {
    it('replaces the name and the relation', async () => {
      await createDevice('d1');
      const d2 = await createDevice('d2');
      const d3 = await createDevice('d3');
      const account = await createAccount('old', ['d1']);
      const res = await request(t.http)
        .put(`/api/accounts/${account._id}`)
        .send({ name: 'new', deviceIds: ['d3', d2._id] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account._id, name: 'new', deviceIds: [d3._id, d2._id] });
      expect(await storedAccount(account._id)).toMatchObject({ name: 'new' });
      expect(await storedIds(account._id)).toEqual([d3._id, d2._id]);
    });

    it('empties the relation when deviceIds is missing, and the devices stay', async () => {
      await createDevice('d1');
      await createDevice('d2');
      const account = await createAccount('full', ['d1', 'd2']);
      const res = await request(t.http).put(`/api/accounts/${account._id}`).send({ name: 'full' }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(account._id)).toEqual([]);
      expect(await t.devices.countDocuments()).toBe(2);
    });

    it('answers 400 when the name is missing, and changes nothing', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('keep', ['d1']);
      const res = await request(t.http).put(`/api/accounts/${account._id}`).send({ deviceIds: [] }).expect(400);
      expectErrorWith(res.body, 400, [{ path: 'name', code: 'isString' }]);
      expect(await storedAccount(account._id)).toMatchObject({ name: 'keep' });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it('answers 422 for an unknown device, and changes nothing', async () => {
      const d1 = await createDevice('d1');
      const account = await createAccount('keep', ['d1']);
      const res = await request(t.http)
        .put(`/api/accounts/${account._id}`)
        .send({ name: 'new', deviceIds: [UNKNOWN_ID] })
        .expect(422);
      expectError(res.body, 422, [{ path: 'deviceIds[0]', code: 'unknown_device' }]);
      expect(await storedAccount(account._id)).toMatchObject({ name: 'keep' });
      expect(await storedIds(account._id)).toEqual([d1._id]);
    });

    it('answers 404 for an unknown account and 400 for a malformed id', async () => {
      const notFound = await request(t.http).put(`/api/accounts/${UNKNOWN_ID}`).send({ name: 'x' }).expect(404);
      expectError(notFound.body, 404);
      const malformed = await request(t.http).put('/api/accounts/nope').send({ name: 'x' }).expect(400);
      expectError(malformed.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('DELETE /api/accounts/:id', () => {
    it('answers { count: 1 }, removes the account and keeps its devices', async () => {
      const d1 = await createDevice('d1');
      const d2 = await createDevice('d2');
      const doomed = await createAccount('doomed', ['d1', 'd2']);
      const other = await createAccount('other', ['d2']);
      const res = await request(t.http).delete(`/api/accounts/${doomed._id}`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.accounts.exists({ _id: doomed._id })).toBeNull();
      expect(await t.devices.countDocuments({ _id: { $in: [d1._id, d2._id] } })).toBe(2);
      expect(await storedIds(other._id)).toEqual([d2._id]);
      await request(t.http).get(`/api/accounts/${doomed._id}`).expect(404);
      await request(t.http).get('/api/devices/d1').expect(200);
    });

    it('answers 404 for an unknown account, and for a second delete', async () => {
      const account = await createAccount('once');
      await request(t.http).delete(`/api/accounts/${account._id}`).expect(200);
      const again = await request(t.http).delete(`/api/accounts/${account._id}`).expect(404);
      expectError(again.body, 404);
      const unknown = await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}`).expect(404);
      expectError(unknown.body, 404);
    });

    it('answers 400 for a malformed id and deletes nothing', async () => {
      await createAccount('survivor');
      const res = await request(t.http).delete('/api/accounts/survivor').expect(400);
      expectError(res.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
      expect(await t.accounts.countDocuments()).toBe(1);
    });
  });
});

describe('Accounts with a limit of 3 devices per account', () => {
  let t: TestApp;
  let ids: string[];

  beforeAll(async () => {
    t = await createTestApp((builder) => builder.overrideProvider(getConfigToken('relation')).useValue({ maxDevicesPerAccount: 3 }));
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    const devices = await t.devices.create(['d1', 'd2', 'd3', 'd4'].map((myId) => ({ myId, deviceUID: `uid-${myId}` })));
    ids = devices.map((device) => device._id.toHexString());
  });

  const tooMany = [{ path: 'deviceIds', code: 'too_many_devices' }];

  describe('POST /api/accounts', () => {
    it('accepts exactly the limit', async () => {
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'full', deviceIds: ids.slice(0, 3) })
        .expect(201);
      expect((await t.accounts.findById(res.body._id).lean())?.deviceIds.map(String)).toEqual(ids.slice(0, 3));
    });

    it('answers 422 too_many_devices over the limit, and writes nothing', async () => {
      const res = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'over', deviceIds: ['d1', 'd2', 'd3', 'd4'] })
        .expect(422);
      expectError(res.body, 422, tooMany);
      expect(await t.accounts.countDocuments()).toBe(0);
    });
  });

  describe('PATCH /api/accounts/:id', () => {
    it('answers 422 too_many_devices over the limit, and changes nothing', async () => {
      const account = await t.accounts.create({ name: 'keep', deviceIds: [ids[0]] });
      const res = await request(t.http).patch(`/api/accounts/${account._id}`).send({ name: 'changed', deviceIds: ids }).expect(422);
      expectError(res.body, 422, tooMany);
      const stored = await t.accounts.findById(account._id).lean();
      expect(stored?.name).toBe('keep');
      expect(stored?.deviceIds.map(String)).toEqual([ids[0]]);
    });
  });

  describe('PUT /api/accounts/:id', () => {
    it('answers 422 too_many_devices over the limit, and changes nothing', async () => {
      const account = await t.accounts.create({ name: 'keep', deviceIds: [ids[1]] });
      const res = await request(t.http).put(`/api/accounts/${account._id}`).send({ name: 'changed', deviceIds: ids }).expect(422);
      expectError(res.body, 422, tooMany);
      const stored = await t.accounts.findById(account._id).lean();
      expect(stored?.name).toBe('keep');
      expect(stored?.deviceIds.map(String)).toEqual([ids[1]]);
    });
  });
});
