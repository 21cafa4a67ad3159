import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request from 'supertest';
import { getConfigToken } from '@nestjs/config';
import { type DeviceBody } from './support/bodies.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const UNKNOWN_ID = '0123456789abcdef01234567';
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 422: 'Unprocessable Entity' };

/** The DESIGN.md error shape, exactly: no other keys, `details` only when given. */
function expectError(body: unknown, statusCode: number, details?: Array<{ path: string; code: string }>) {
  const expected: Record<string, unknown> = { statusCode, error: STATUS_TEXT[statusCode], message: expect.any(String) };
  if (details) expected.details = details.map((detail) => ({ ...detail, message: expect.any(String) }));
  expect(body).toEqual(expected);
}

const MALFORMED_FKS = [['bad id!'], ['rel'], ['x'.repeat(129)], ['a,b']];

describe('Account devices', () => {
  let t: TestApp;
  let d1: DeviceBody;
  let d2: DeviceBody;
  let d3: DeviceBody;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    d1 = await createDevice('d1');
    d2 = await createDevice('d2');
    d3 = await createDevice('d3');
  });

  const createDevice = (myId: string): Promise<DeviceBody> =>
    request(t.http)
      .post('/api/devices')
      .send({ myId, deviceUID: `uid-${myId}` })
      .expect(201)
      .then((res) => res.body);

  const createAccount = (deviceIds: string[] = [], name = 'acc'): Promise<string> =>
    request(t.http)
      .post('/api/accounts')
      .send({ name, deviceIds })
      .expect(201)
      .then((res) => res.body._id);

  const storedIds = async (id: string) => (await t.accounts.findById(id).lean())?.deviceIds.map(String);

  describe('GET /api/accounts/:id/devices', () => {
    it('returns the devices in reference order with X-Total-Count', async () => {
      const account = await createAccount([d3._id, d1._id, d2._id]);
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('3');
      expect(res.body).toEqual([d3, d1, d2]);
    });

    it('returns only this account’s devices', async () => {
      const account = await createAccount(['d2']);
      await createAccount(['d1', 'd3'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('1');
      expect(res.body).toEqual([d2]);
    });

    it('returns an empty list and X-Total-Count 0 for an account without devices', async () => {
      const account = await createAccount();
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('0');
      expect(res.body).toEqual([]);
    });

    it('answers 404 for an unknown account and 400 for a malformed one', async () => {
      const unknown = await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices`).expect(404);
      expectError(unknown.body, 404);
      expect(unknown.body.message).toContain(UNKNOWN_ID);
      const malformed = await request(t.http).get('/api/accounts/acc/devices').expect(400);
      expectError(malformed.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it('links a device by ObjectId, appends it and answers the device', async () => {
      const account = await createAccount(['d1']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${d2._id}`).expect(200);
      expect(res.body).toEqual(d2);
      expect(await storedIds(account)).toEqual([d1._id, d2._id]);
    });

    it('links a device by myId and stores its ObjectId', async () => {
      const account = await createAccount();
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/d3`).expect(200);
      expect(res.body).toEqual(d3);
      const stored = await t.accounts.findById(account).lean();
      expect(stored?.deviceIds).toHaveLength(1);
      expect(stored?.deviceIds[0]).toBeInstanceOf(Types.ObjectId);
      expect(String(stored?.deviceIds[0])).toBe(d3._id);
      expect(await t.accounts.collection.countDocuments({ deviceIds: 'd3' })).toBe(0);
    });

    it('is idempotent: linking twice, by ObjectId then myId, keeps one copy in its place', async () => {
      const account = await createAccount(['d1', 'd2', 'd3']);
      const first = await request(t.http).put(`/api/accounts/${account}/devices/rel/${d1._id}`).expect(200);
      const second = await request(t.http).put(`/api/accounts/${account}/devices/rel/d1`).expect(200);
      expect(first.body).toEqual(d1);
      expect(second.body).toEqual(d1);
      expect(await storedIds(account)).toEqual([d1._id, d2._id, d3._id]);
    });

    it('answers 404 for an unknown device ObjectId and leaves deviceIds as they were', async () => {
      const account = await createAccount(['d2', 'd1']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${UNKNOWN_ID}`).expect(404);
      expectError(res.body, 404);
      expect(res.body.message).toContain(UNKNOWN_ID);
      expect(await storedIds(account)).toEqual([d2._id, d1._id]);
    });

    it('answers 404 for an unknown device myId and leaves deviceIds as they were', async () => {
      const account = await createAccount(['d3']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/ghost`).expect(404);
      expectError(res.body, 404);
      expect(res.body.message).toContain('ghost');
      expect(await storedIds(account)).toEqual([d3._id]);
    });

    it.each([
      ['ObjectId', () => d1._id],
      ['myId', () => 'd1'],
    ])('answers 404 for an unknown account (device by %s) and creates no account', async (_case, fk) => {
      await createAccount(['d2']);
      const res = await request(t.http).put(`/api/accounts/${UNKNOWN_ID}/devices/rel/${fk()}`).expect(404);
      expectError(res.body, 404);
      expect(res.body.message).toContain(`Account ${UNKNOWN_ID}`);
      expect(await t.accounts.countDocuments()).toBe(1);
      expect(await t.accounts.countDocuments({ deviceIds: d1._id })).toBe(0);
    });

    it.each(MALFORMED_FKS)('answers 400 for the malformed fk %s and changes nothing', async (fk) => {
      const account = await createAccount(['d1']);
      const res = await request(t.http)
        .put(`/api/accounts/${account}/devices/rel/${encodeURIComponent(fk)}`)
        .expect(400);
      expectError(res.body, 400, [{ path: 'fk', code: 'invalid_device_id' }]);
      expect(await storedIds(account)).toEqual([d1._id]);
    });

    it('answers 400 for a malformed account id', async () => {
      const res = await request(t.http).put('/api/accounts/123/devices/rel/d1').expect(400);
      expectError(res.body, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });
  });

  describe('DELETE /api/accounts/:id/devices/rel/:fk', () => {
    it('unlinks by ObjectId with 204, keeps the order of the rest and the device itself', async () => {
      const account = await createAccount(['d3', 'd2', 'd1']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/${d2._id}`).expect(204);
      expect(res.text).toBe('');
      expect(await storedIds(account)).toEqual([d3._id, d1._id]);
      expect(await t.devices.exists({ _id: d2._id })).not.toBeNull();
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${d2._id}`).expect(404);
    });

    it('unlinks by myId with 204, and HEAD then answers 404', async () => {
      const account = await createAccount(['d1', 'd2']);
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      expect(await storedIds(account)).toEqual([d2._id]);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d1`).expect(404);
    });

    it('unlinks only from this account', async () => {
      const account = await createAccount(['d1']);
      const other = await createAccount(['d1'], 'other');
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      expect(await storedIds(account)).toEqual([]);
      expect(await storedIds(other)).toEqual([d1._id]);
    });

    it.each([
      ['a device that is not linked, by ObjectId', () => d2._id],
      ['a device that is not linked, by myId', () => 'd2'],
      ['an unknown device ObjectId', () => UNKNOWN_ID],
      ['an unknown device myId', () => 'ghost'],
    ])('answers 404 for %s and changes nothing', async (_case, fk) => {
      const account = await createAccount(['d1', 'd3']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/${fk()}`).expect(404);
      expectError(res.body, 404);
      expect(await storedIds(account)).toEqual([d1._id, d3._id]);
    });

    it('answers 404 for a second unlink of the same device', async () => {
      const account = await createAccount(['d1']);
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(404);
      expectError(res.body, 404);
    });

    it('answers 404 for an unknown account', async () => {
      const res = await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}/devices/rel/${d1._id}`).expect(404);
      expectError(res.body, 404);
      expect(res.body.message).toContain(`Account ${UNKNOWN_ID}`);
    });

    it.each(MALFORMED_FKS)('answers 400 for the malformed fk %s and changes nothing', async (fk) => {
      const account = await createAccount(['d1']);
      const res = await request(t.http)
        .delete(`/api/accounts/${account}/devices/rel/${encodeURIComponent(fk)}`)
        .expect(400);
      expectError(res.body, 400, [{ path: 'fk', code: 'invalid_device_id' }]);
      expect(await storedIds(account)).toEqual([d1._id]);
    });
  });

  describe('HEAD /api/accounts/:id/devices/rel/:fk', () => {
    it('answers 200 for a linked device, by ObjectId and by myId', async () => {
      const account = await createAccount(['d1', 'd2']);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${d2._id}`).expect(200);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d2`).expect(200);
    });

    it.each([
      ['a device linked to another account only', () => d3._id],
      ['a device linked to another account only, by myId', () => 'd3'],
      ['an unknown device ObjectId', () => UNKNOWN_ID],
      ['an unknown device myId', () => 'ghost'],
    ])('answers 404 for %s', async (_case, fk) => {
      const account = await createAccount(['d1']);
      await createAccount(['d3'], 'other');
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${fk()}`).expect(404);
      expect(await storedIds(account)).toEqual([d1._id]);
    });

    it('answers 404 for an unknown account', async () => {
      await createAccount(['d1']);
      await request(t.http).head(`/api/accounts/${UNKNOWN_ID}/devices/rel/d1`).expect(404);
    });

    it('answers 400 for a malformed fk or account id', async () => {
      const account = await createAccount(['d1']);
      await request(t.http)
        .head(`/api/accounts/${account}/devices/rel/${encodeURIComponent('bad id!')}`)
        .expect(400);
      await request(t.http).head('/api/accounts/nope/devices/rel/d1').expect(400);
    });
  });
});

describe('Account devices with a limit of 3 devices per account', () => {
  let t: TestApp;
  let account: string;
  let ids: string[];

  beforeAll(async () => {
    t = await createTestApp((builder) => builder.overrideProvider(getConfigToken('relation')).useValue({ maxDevicesPerAccount: 3 }));
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    const devices = await t.devices.create(['d1', 'd2', 'd3', 'd4'].map((myId) => ({ myId, deviceUID: `uid-${myId}` })));
    ids = devices.map((device) => device._id.toHexString());
    account = (await t.accounts.create({ name: 'full', deviceIds: ids.slice(0, 3) }))._id.toHexString();
  });

  const storedIds = async () => (await t.accounts.findById(account).lean())?.deviceIds.map(String);

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it.each([
      ['ObjectId', () => ids[3]],
      ['myId', () => 'd4'],
    ])('answers 422 too_many_devices for a new device by %s on a full account, and writes nothing', async (_case, fk) => {
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${fk()}`).expect(422);
      expectError(res.body, 422, [{ path: 'fk', code: 'too_many_devices' }]);
      expect(await storedIds()).toEqual(ids.slice(0, 3));
    });

    it('answers 200 for a device the full account already holds, and keeps one copy', async () => {
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/d2`).expect(200);
      expect(res.body._id).toBe(ids[1]);
      expect(await storedIds()).toEqual(ids.slice(0, 3));
    });

    it('links again once an unlink has made room', async () => {
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      await request(t.http).put(`/api/accounts/${account}/devices/rel/d4`).expect(200);
      expect(await storedIds()).toEqual([ids[1], ids[2], ids[3]]);
    });
  });
});
