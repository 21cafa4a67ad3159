import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import request from 'supertest';
import { createAccount, createDevice, createDevices, type DeviceBody, myIds, seedDevices, storedIds } from './support/bodies.js';
import { expectError, json } from './support/http.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const UNKNOWN_ID = '0123456789abcdef01234567';
const MALFORMED_FKS = [['bad id!'], ['rel'], ['x'.repeat(129)], ['a,b']];

describe('Account devices', () => {
  let t: TestApp;
  let d: Record<'d1' | 'd2' | 'd3' | 'd4' | 'd5', DeviceBody>;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    d = await createDevices(t.http, ['d1', 'd2', 'd3', 'd4', 'd5']);
  });

  describe('GET /api/accounts/:id/devices', () => {
    it('returns the devices in reference order with X-Total-Count', async () => {
      const account = await createAccount(t.http, [d.d3._id, d.d1._id, d.d2._id]);
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('3');
      expect(res.body).toEqual([d.d3, d.d1, d.d2]);
    });

    it('returns only this account’s devices', async () => {
      const account = await createAccount(t.http, ['d2']);
      await createAccount(t.http, ['d1', 'd3'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('1');
      expect(res.body).toEqual([d.d2]);
    });

    it('returns an empty list and X-Total-Count 0 for an account without devices', async () => {
      const account = await createAccount(t.http);
      const res = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(res.headers['x-total-count']).toBe('0');
      expect(res.body).toEqual([]);
    });

    it('answers 404 for an unknown account and 400 for a malformed one', async () => {
      const unknown = await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices`).expect(404);
      expectError(unknown, 404);
      expect(unknown.body.message).toContain(UNKNOWN_ID);
      const malformed = await request(t.http).get('/api/accounts/acc/devices').expect(400);
      expectError(malformed, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });

    it.each([
      ['JSON', `filter=${json({ limit: 2, skip: 1 })}`],
      ['the bracket form', 'filter[limit]=2&filter[skip]=1'],
      ['offset', 'filter[limit]=2&filter[offset]=1'],
    ])('pages {"limit":2,"skip":1} in reference order, given as %s', async (_case, query) => {
      const account = await createAccount(t.http, ['d4', 'd2', 'd5', 'd1']);
      await createAccount(t.http, ['d3', 'd1'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices?${query}`).expect(200);
      expect(res.body).toEqual([d.d2, d.d5]);
      expect(res.headers['x-total-count']).toBe('4');
    });

    it('answers an empty page past the end with the full X-Total-Count', async () => {
      const account = await createAccount(t.http, ['d4', 'd2']);
      const res = await request(t.http).get(`/api/accounts/${account}/devices?filter[skip]=5`).expect(200);
      expect(res.body).toEqual([]);
      expect(res.headers['x-total-count']).toBe('2');
    });

    it('applies where within this account only, in reference order, with X-Total-Count of matches', async () => {
      const account = await createAccount(t.http, ['d4', 'd2', 'd1']);
      await createAccount(t.http, ['d5', 'd3'], 'other');
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ where: { myId: { inq: ['d1', 'd3', 'd4', 'd5'] } } })}`)
        .expect(200);
      expect(res.body).toEqual([d.d4, d.d1]);
      expect(res.headers['x-total-count']).toBe('2');
    });

    it('pages a where in reference order', async () => {
      const account = await createAccount(t.http, ['d4', 'd2', 'd5', 'd1']);
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter[where][myId][neq]=d2&filter[skip]=1&filter[limit]=1`)
        .expect(200);
      expect(res.body).toEqual([d.d5]);
      expect(res.headers['x-total-count']).toBe('3');
    });

    it('applies where on _id by myId and by ObjectId within this account', async () => {
      const account = await createAccount(t.http, ['d3', 'd1']);
      const res = await request(t.http)
        .get(`/api/accounts/${account}/devices?filter=${json({ where: { _id: { inq: ['d1', d.d3._id, 'd2'] } } })}`)
        .expect(200);
      expect(res.body).toEqual([d.d3, d.d1]);
    });

    it('applies order, skip and limit within this account, with X-Total-Count of matches', async () => {
      const account = await createAccount(t.http, ['d2', 'd4', 'd1', 'd3']);
      await createAccount(t.http, ['d5'], 'other');
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
      const account = await createAccount(t.http, ['d2', 'd1']);
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
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http).get(`/api/accounts/${account}/devices?filter[include]=devices`);
      expectError(res, 400, [{ path: 'filter.include', code: 'unknown_relation' }]);
    });

    it('answers 404 for an unknown account given a filter too', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices?filter[where][myId]=d1`), 404);
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices?filter[order]=myId`), 404);
    });
  });

  describe('GET /api/accounts/:id/devices/count', () => {
    it('counts only this account’s devices while unlinked devices exist (LoopBack 3 counted the whole collection)', async () => {
      const account = await createAccount(t.http, ['d2', 'd4']);
      await createAccount(t.http, ['d1'], 'other');
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
      const account = await createAccount(t.http, ['d2', 'd4']);
      await createAccount(t.http, ['d1', 'd5'], 'other');
      const res = await request(t.http).get(`/api/accounts/${account}/devices/count?${query}`).expect(200);
      expect(res.body).toEqual({ count: expected });
    });

    it('counts 0 for an account without devices', async () => {
      const account = await createAccount(t.http);
      expect((await request(t.http).get(`/api/accounts/${account}/devices/count`).expect(200)).body).toEqual({ count: 0 });
      expect((await request(t.http).get(`/api/accounts/${account}/devices/count?where[myId]=d1`).expect(200)).body).toEqual({ count: 0 });
    });

    it('answers 404 for an unknown account, with and without where', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/count`), 404);
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/count?where[myId]=d1`), 404);
    });

    it('answers 400 naming the where path for a refused where', async () => {
      const account = await createAccount(t.http, ['d1']);
      expectError(await request(t.http).get(`/api/accounts/${account}/devices/count?where[name]=x`), 400, [
        { path: 'where.name', code: 'unknown_field' },
      ]);
    });
  });

  describe('POST /api/accounts/:id/devices', () => {
    it('creates a device, links it at the end and answers 201 with the device', async () => {
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'fresh', deviceUID: 'UID-F' }).expect(201);
      expect(res.body).toEqual({
        _id: expect.stringMatching(/^[0-9a-f]{24}$/),
        myId: 'fresh',
        deviceUID: 'UID-F',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(await storedIds(t, account)).toEqual([d.d1._id, res.body._id]);
      expect((await t.devices.findById(res.body._id).lean())?.myId).toBe('fresh');
    });

    it('answers 409 for a duplicate myId, links nothing and creates nothing', async () => {
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'd2', deviceUID: 'UID-NEW' });
      expectError(res, 409, [{ path: 'myId', code: 'duplicate' }]);
      expect(await storedIds(t, account)).toEqual([d.d1._id]);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 404 for an unknown account and creates no device', async () => {
      const res = await request(t.http).post(`/api/accounts/${UNKNOWN_ID}/devices`).send({ myId: 'orphan', deviceUID: 'UID-O' });
      expectError(res, 404);
      expect(await t.devices.countDocuments({ myId: 'orphan' })).toBe(0);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 400 for an invalid device and creates nothing', async () => {
      const account = await createAccount(t.http);
      const res = await request(t.http).post(`/api/accounts/${account}/devices`).send({ myId: 'count', deviceUID: 'UID-X' });
      expectError(res, 400, { including: [{ path: 'myId' }] });
      expect(await t.devices.countDocuments()).toBe(5);
      expect(await storedIds(t, account)).toEqual([]);
    });
  });

  describe('DELETE /api/accounts/:id/devices', () => {
    it('deletes only this account’s devices while unlinked devices exist (LoopBack 3 deleted the whole collection)', async () => {
      const account = await createAccount(t.http, ['d2', 'd4']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices`).expect(200);
      expect(res.body).toEqual({ count: 2 });
      expect((await t.devices.find({}, { myId: 1 }).lean()).map((device) => device.myId).sort()).toEqual(['d1', 'd3', 'd5']);
      expect(await storedIds(t, account)).toEqual([]);
    });

    it('removes the deleted devices from every other account and keeps their other devices', async () => {
      const account = await createAccount(t.http, ['d1', 'd2']);
      const other = await createAccount(t.http, ['d3', 'd2', 'd5'], 'other');
      const third = await createAccount(t.http, ['d1'], 'third');
      await request(t.http).delete(`/api/accounts/${account}/devices`).expect(200);
      expect(await storedIds(t, other)).toEqual([d.d3._id, d.d5._id]);
      expect(await storedIds(t, third)).toEqual([]);
      expect(await t.accounts.countDocuments({ deviceIds: { $in: [d.d1._id, d.d2._id] } })).toBe(0);
      expect(await t.accounts.countDocuments()).toBe(3);
    });

    it('answers { count: 0 } for an account without devices and deletes nothing', async () => {
      const account = await createAccount(t.http);
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
      const account = await createAccount(t.http, ['d1', 'd3']);
      expect((await request(t.http).get(`/api/accounts/${account}/devices/${d.d3._id}`).expect(200)).body).toEqual(d.d3);
      expect((await request(t.http).get(`/api/accounts/${account}/devices/d3`).expect(200)).body).toEqual(d.d3);
    });

    it.each([
      ['an existing device that is not linked', 'd2'],
      ['an unknown device ObjectId', UNKNOWN_ID],
      ['an unknown device myId', 'ghost'],
    ])('answers 404 for %s', async (_case, fk) => {
      const account = await createAccount(t.http, ['d1']);
      await createAccount(t.http, ['d2'], 'other');
      expectError(await request(t.http).get(`/api/accounts/${account}/devices/${fk}`), 404);
    });

    it('answers 404 for an unknown account', async () => {
      expectError(await request(t.http).get(`/api/accounts/${UNKNOWN_ID}/devices/d1`), 404);
    });
  });

  describe('PUT /api/accounts/:id/devices/:fk', () => {
    it('changes only the given fields of a linked device', async () => {
      const account = await createAccount(t.http, ['d1', 'd2']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/d2`).send({ deviceUID: 'UID-NEW' }).expect(200);
      expect(res.body).toMatchObject({ _id: d.d2._id, myId: 'd2', deviceUID: 'UID-NEW' });
      expect(await t.devices.findById(d.d2._id).lean()).toMatchObject({ myId: 'd2', deviceUID: 'UID-NEW' });
      expect(await storedIds(t, account)).toEqual([d.d1._id, d.d2._id]);
    });

    it('renames a linked device by ObjectId and keeps the link', async () => {
      const account = await createAccount(t.http, ['d1']);
      await request(t.http).put(`/api/accounts/${account}/devices/${d.d1._id}`).send({ myId: 'renamed' }).expect(200);
      expect((await t.devices.findById(d.d1._id).lean())?.myId).toBe('renamed');
      await request(t.http).head(`/api/accounts/${account}/devices/rel/renamed`).expect(200);
    });

    it('answers 404 for a device that is not linked and leaves it unchanged', async () => {
      const account = await createAccount(t.http, ['d1']);
      expectError(await request(t.http).put(`/api/accounts/${account}/devices/d2`).send({ deviceUID: 'UID-HACK' }), 404);
      expect((await t.devices.findById(d.d2._id).lean())?.deviceUID).toBe('uid-d2');
    });

    it('answers 409 for a taken myId and 400 for an unknown property, changing nothing', async () => {
      const account = await createAccount(t.http, ['d1']);
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
      const account = await createAccount(t.http, ['d1', 'd2', 'd3']);
      const other = await createAccount(t.http, ['d2', 'd4'], 'other');
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/d2`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.devices.exists({ _id: d.d2._id })).toBeNull();
      expect(await storedIds(t, account)).toEqual([d.d1._id, d.d3._id]);
      expect(await storedIds(t, other)).toEqual([d.d4._id]);
    });

    it('destroys by ObjectId as well', async () => {
      const account = await createAccount(t.http, ['d5']);
      expect((await request(t.http).delete(`/api/accounts/${account}/devices/${d.d5._id}`).expect(200)).body).toEqual({ count: 1 });
      expect(await t.devices.countDocuments()).toBe(4);
    });

    it('answers 404 for a device that is not linked and keeps the device', async () => {
      const account = await createAccount(t.http, ['d1']);
      const other = await createAccount(t.http, ['d2'], 'other');
      expectError(await request(t.http).delete(`/api/accounts/${account}/devices/d2`), 404);
      expect(await t.devices.exists({ _id: d.d2._id })).not.toBeNull();
      expect(await storedIds(t, other)).toEqual([d.d2._id]);
    });

    it('answers 404 for an unknown account and deletes nothing', async () => {
      await createAccount(t.http, ['d1']);
      expectError(await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}/devices/d1`), 404);
      expect(await t.devices.countDocuments()).toBe(5);
    });
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it('links a device by ObjectId, appends it and answers the device', async () => {
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${d.d2._id}`).expect(200);
      expect(res.body).toEqual(d.d2);
      expect(await storedIds(t, account)).toEqual([d.d1._id, d.d2._id]);
    });

    it('links a device by myId and stores its ObjectId', async () => {
      const account = await createAccount(t.http);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/d3`).expect(200);
      expect(res.body).toEqual(d.d3);
      const stored = await t.accounts.findById(account).lean();
      expect(stored?.deviceIds).toHaveLength(1);
      expect(stored?.deviceIds[0]).toBeInstanceOf(Types.ObjectId);
      expect(String(stored?.deviceIds[0])).toBe(d.d3._id);
      expect(await t.accounts.collection.countDocuments({ deviceIds: 'd3' })).toBe(0);
    });

    it('is idempotent: linking twice, by ObjectId then myId, keeps one copy in its place', async () => {
      const account = await createAccount(t.http, ['d1', 'd2', 'd3']);
      const first = await request(t.http).put(`/api/accounts/${account}/devices/rel/${d.d1._id}`).expect(200);
      const second = await request(t.http).put(`/api/accounts/${account}/devices/rel/d1`).expect(200);
      expect(first.body).toEqual(d.d1);
      expect(second.body).toEqual(d.d1);
      expect(await storedIds(t, account)).toEqual([d.d1._id, d.d2._id, d.d3._id]);
    });

    it('answers 404 for an unknown device ObjectId and leaves deviceIds as they were', async () => {
      const account = await createAccount(t.http, ['d2', 'd1']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${UNKNOWN_ID}`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain(UNKNOWN_ID);
      expect(await storedIds(t, account)).toEqual([d.d2._id, d.d1._id]);
    });

    it('answers 404 for an unknown device myId and leaves deviceIds as they were', async () => {
      const account = await createAccount(t.http, ['d3']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/ghost`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain('ghost');
      expect(await storedIds(t, account)).toEqual([d.d3._id]);
    });

    it.each([
      ['ObjectId', () => d.d1._id],
      ['myId', () => 'd1'],
    ])('answers 404 for an unknown account (device by %s) and creates no account', async (_case, fk) => {
      await createAccount(t.http, ['d2']);
      const res = await request(t.http).put(`/api/accounts/${UNKNOWN_ID}/devices/rel/${fk()}`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain(`Account ${UNKNOWN_ID}`);
      expect(await t.accounts.countDocuments()).toBe(1);
      expect(await t.accounts.countDocuments({ deviceIds: d.d1._id })).toBe(0);
    });

    it.each(MALFORMED_FKS)('answers 400 for the malformed fk %s and changes nothing', async (fk) => {
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http)
        .put(`/api/accounts/${account}/devices/rel/${encodeURIComponent(fk)}`)
        .expect(400);
      expectError(res, 400, [{ path: 'fk', code: 'invalid_device_id' }]);
      expect(await storedIds(t, account)).toEqual([d.d1._id]);
    });

    it('answers 400 for a malformed account id', async () => {
      const res = await request(t.http).put('/api/accounts/123/devices/rel/d1').expect(400);
      expectError(res, 400, [{ path: 'id', code: 'invalid_object_id' }]);
    });
  });

  describe('DELETE /api/accounts/:id/devices/rel/:fk', () => {
    it('unlinks by ObjectId with 204, keeps the order of the rest and the device itself', async () => {
      const account = await createAccount(t.http, ['d3', 'd2', 'd1']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/${d.d2._id}`).expect(204);
      expect(res.text).toBe('');
      expect(await storedIds(t, account)).toEqual([d.d3._id, d.d1._id]);
      expect(await t.devices.exists({ _id: d.d2._id })).not.toBeNull();
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${d.d2._id}`).expect(404);
    });

    it('unlinks by myId with 204, and HEAD then answers 404', async () => {
      const account = await createAccount(t.http, ['d1', 'd2']);
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      expect(await storedIds(t, account)).toEqual([d.d2._id]);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d1`).expect(404);
    });

    it('unlinks only from this account', async () => {
      const account = await createAccount(t.http, ['d1']);
      const other = await createAccount(t.http, ['d1'], 'other');
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      expect(await storedIds(t, account)).toEqual([]);
      expect(await storedIds(t, other)).toEqual([d.d1._id]);
    });

    it.each([
      ['a device that is not linked, by ObjectId', () => d.d2._id],
      ['a device that is not linked, by myId', () => 'd2'],
      ['an unknown device ObjectId', () => UNKNOWN_ID],
      ['an unknown device myId', () => 'ghost'],
    ])('answers 404 for %s and changes nothing', async (_case, fk) => {
      const account = await createAccount(t.http, ['d1', 'd3']);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/${fk()}`).expect(404);
      expectError(res, 404);
      expect(await storedIds(t, account)).toEqual([d.d1._id, d.d3._id]);
    });

    it('answers 404 for a second unlink of the same device', async () => {
      const account = await createAccount(t.http, ['d1']);
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      const res = await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(404);
      expectError(res, 404);
    });

    it('answers 404 for an unknown account', async () => {
      const res = await request(t.http).delete(`/api/accounts/${UNKNOWN_ID}/devices/rel/${d.d1._id}`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain(`Account ${UNKNOWN_ID}`);
    });

    it.each(MALFORMED_FKS)('answers 400 for the malformed fk %s and changes nothing', async (fk) => {
      const account = await createAccount(t.http, ['d1']);
      const res = await request(t.http)
        .delete(`/api/accounts/${account}/devices/rel/${encodeURIComponent(fk)}`)
        .expect(400);
      expectError(res, 400, [{ path: 'fk', code: 'invalid_device_id' }]);
      expect(await storedIds(t, account)).toEqual([d.d1._id]);
    });
  });

  describe('HEAD /api/accounts/:id/devices/rel/:fk', () => {
    it('answers 200 for a linked device, by ObjectId and by myId', async () => {
      const account = await createAccount(t.http, ['d1', 'd2']);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${d.d2._id}`).expect(200);
      await request(t.http).head(`/api/accounts/${account}/devices/rel/d2`).expect(200);
    });

    it.each([
      ['a device linked to another account only', () => d.d3._id],
      ['a device linked to another account only, by myId', () => 'd3'],
      ['a device no account links, by myId', () => 'd2'],
      ['an unknown device ObjectId', () => UNKNOWN_ID],
      ['an unknown device myId', () => 'ghost'],
    ])('answers 404 for %s', async (_case, fk) => {
      const account = await createAccount(t.http, ['d1']);
      await createAccount(t.http, ['d3'], 'other');
      await request(t.http).head(`/api/accounts/${account}/devices/rel/${fk()}`).expect(404);
      expect(await storedIds(t, account)).toEqual([d.d1._id]);
    });

    it('answers 404 for an unknown account', async () => {
      await createAccount(t.http, ['d1']);
      await request(t.http).head(`/api/accounts/${UNKNOWN_ID}/devices/rel/d1`).expect(404);
    });

    it('answers 400 for a malformed fk or account id', async () => {
      const account = await createAccount(t.http, ['d1']);
      await request(t.http)
        .head(`/api/accounts/${account}/devices/rel/${encodeURIComponent('bad id!')}`)
        .expect(400);
      await request(t.http).head('/api/accounts/nope/devices/rel/d1').expect(400);
    });
  });

  describe('POST /api/accounts/:id/devices/rel', () => {
    it('links many by ObjectId and myId, appending in the given order and skipping ones already linked', async () => {
      const account = await createAccount(t.http, ['d2']);
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d4', d.d2._id, d.d1._id] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'acc', deviceIds: [d.d2._id, d.d4._id, d.d1._id] });
      expect(await storedIds(t, account)).toEqual([d.d2._id, d.d4._id, d.d1._id]);
    });

    it('answers the account unchanged for an empty list', async () => {
      const account = await createAccount(t.http, ['d3']);
      const res = await request(t.http).post(`/api/accounts/${account}/devices/rel`).send({ ids: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([d.d3._id]);
    });

    it('is all or nothing: an unknown id is a 422 naming ids[i], and deviceIds stay as they were', async () => {
      const account = await createAccount(t.http, ['d5', 'd1']);
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d2', 'ghost', d.d3._id, UNKNOWN_ID] });
      expectError(res, 422, [
        { path: 'ids[1]', code: 'unknown_device' },
        { path: 'ids[3]', code: 'unknown_device' },
      ]);
      expect(await storedIds(t, account)).toEqual([d.d5._id, d.d1._id]);
    });

    it('answers 422 duplicate_device for an id listed twice (by ObjectId and myId) and links nothing', async () => {
      const account = await createAccount(t.http);
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d2', 'd3', d.d2._id] });
      expectError(res, 422, [{ path: 'ids[2]', code: 'duplicate_device' }]);
      expect(await storedIds(t, account)).toEqual([]);
    });

    it('answers 400 for a malformed id or a body that is not a list, and links nothing', async () => {
      const account = await createAccount(t.http, ['d1']);
      expectError(
        await request(t.http)
          .post(`/api/accounts/${account}/devices/rel`)
          .send({ ids: ['d2', 'bad id!'] }),
        400,
        [{ path: 'ids[1]', code: 'invalid_device_id' }],
      );
      const notList = await request(t.http).post(`/api/accounts/${account}/devices/rel`).send({ ids: 'd2' });
      expectError(notList, 400, { including: [{ path: 'ids' }] });
      expect(await storedIds(t, account)).toEqual([d.d1._id]);
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
      const account = await createAccount(t.http, ['d1', 'd2', 'd3']);
      const res = await request(t.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d5', d.d3._id, 'd1'] })
        .expect(200);
      expect(res.body).toMatchObject({ _id: account, name: 'acc', deviceIds: [d.d5._id, d.d3._id, d.d1._id] });
      expect(await storedIds(t, account)).toEqual([d.d5._id, d.d3._id, d.d1._id]);
      const listed = await request(t.http).get(`/api/accounts/${account}/devices`).expect(200);
      expect(listed.body).toEqual([d.d5, d.d3, d.d1]);
    });

    it('keeps a reversed order exactly', async () => {
      const account = await createAccount(t.http, ['d1', 'd2', 'd3', 'd4', 'd5']);
      await request(t.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d5', 'd4', 'd3', 'd2', 'd1'] })
        .expect(200);
      expect(await storedIds(t, account)).toEqual([d.d5._id, d.d4._id, d.d3._id, d.d2._id, d.d1._id]);
    });

    it('empties the relation with an empty list and keeps the devices', async () => {
      const account = await createAccount(t.http, ['d1', 'd2']);
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel`).send({ ids: [] }).expect(200);
      expect(res.body.deviceIds).toEqual([]);
      expect(await storedIds(t, account)).toEqual([]);
      expect(await t.devices.countDocuments()).toBe(5);
    });

    it('answers 422 for unknown or repeated ids and leaves deviceIds as they were', async () => {
      const account = await createAccount(t.http, ['d2', 'd1']);
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
      expect(await storedIds(t, account)).toEqual([d.d2._id, d.d1._id]);
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
      limited = await createTestApp({ config: { relation: { maxDevicesPerAccount: 5 } } });
    });
    afterAll(() => limited.close());

    it('POST /api/accounts/:id/devices removes the new device again when the link is refused', async () => {
      const account = await createAccount(limited.http, ['d1', 'd2', 'd3', 'd4', 'd5'], 'full');
      const res = await request(limited.http).post(`/api/accounts/${account}/devices`).send({ myId: 'one-too-many', deviceUID: 'UID-X' });
      expectError(res, 422, [{ path: expect.any(String), code: 'too_many_devices' }]);
      expect(await limited.devices.countDocuments({ myId: 'one-too-many' })).toBe(0);
      expect(await limited.devices.countDocuments()).toBe(5);
      expect(await storedIds(limited, account)).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, d.d5._id]);
    });

    it('POST /api/accounts/:id/devices still creates and links below the limit', async () => {
      const account = await createAccount(limited.http, ['d1', 'd2', 'd3', 'd4'], 'almost');
      const res = await request(limited.http)
        .post(`/api/accounts/${account}/devices`)
        .send({ myId: 'fifth', deviceUID: 'UID-5' })
        .expect(201);
      expect(await storedIds(limited, account)).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, res.body._id]);
    });

    it('POST /api/accounts/:id/devices/rel answers 422 too_many_devices past the limit and links nothing', async () => {
      const extra = await createDevice(limited.http, 'd6');
      const account = await createAccount(limited.http, ['d1', 'd2', 'd3'], 'three');
      const res = await request(limited.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d4', 'd5', 'd6'] });
      expectError(res, 422, [{ path: 'ids', code: 'too_many_devices' }]);
      expect(await storedIds(limited, account)).toEqual([d.d1._id, d.d2._id, d.d3._id]);
      const fits = await request(limited.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d1', 'd4', 'd5'] })
        .expect(200);
      expect(fits.body.deviceIds).toEqual([d.d1._id, d.d2._id, d.d3._id, d.d4._id, d.d5._id]);
      expect(extra.myId).toBe('d6');
    });

    it('PUT /api/accounts/:id/devices/rel answers 422 too_many_devices for more ids than the limit', async () => {
      await createDevice(limited.http, 'd6');
      const account = await createAccount(limited.http, ['d1'], 'one');
      const res = await request(limited.http)
        .put(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'] });
      expectError(res, 422, [{ path: 'ids', code: 'too_many_devices' }]);
      expect(await storedIds(limited, account)).toEqual([d.d1._id]);
    });
  });

  describe('GET /api/devices/:id/accounts', () => {
    it('answers the accounts that reference the device, by ObjectId and by myId, with X-Total-Count', async () => {
      const first = await createAccount(t.http, ['d1', 'd2'], 'first');
      await createAccount(t.http, ['d3'], 'second');
      const third = await createAccount(t.http, ['d2'], 'third');
      for (const id of [d.d2._id, 'd2']) {
        const res = await request(t.http).get(`/api/devices/${id}/accounts`).expect(200);
        expect(res.body.map((account: { _id: string }) => account._id)).toEqual([first, third]);
        expect(res.body[0]).toMatchObject({ name: 'first', deviceIds: [d.d1._id, d.d2._id] });
        expect(res.headers['x-total-count']).toBe('2');
      }
    });

    it('filters, orders, pages and includes like GET /api/accounts', async () => {
      await createAccount(t.http, ['d1', 'd2'], 'b-first');
      await createAccount(t.http, ['d2'], 'a-second');
      await createAccount(t.http, ['d2', 'd3'], 'c-third');
      await createAccount(t.http, ['d3'], 'no');
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
      await createAccount(t.http, ['d1']);
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
});

describe('Account devices with a limit of 3 devices per account', () => {
  let t: TestApp;
  let account: string;
  let ids: string[];

  beforeAll(async () => {
    t = await createTestApp({ config: { relation: { maxDevicesPerAccount: 3 } } });
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    ids = await seedDevices(t, ['d1', 'd2', 'd3', 'd4']);
    account = (await t.accounts.create({ name: 'full', deviceIds: ids.slice(0, 3) }))._id.toHexString();
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it.each([
      ['ObjectId', () => ids[3]],
      ['myId', () => 'd4'],
    ])('answers 422 too_many_devices for a new device by %s on a full account, and writes nothing', async (_case, fk) => {
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/${fk()}`).expect(422);
      expectError(res, 422, [{ path: 'fk', code: 'too_many_devices' }]);
      expect(await storedIds(t, account)).toEqual(ids.slice(0, 3));
    });

    it('answers 200 for a device the full account already holds, and keeps one copy', async () => {
      const res = await request(t.http).put(`/api/accounts/${account}/devices/rel/d2`).expect(200);
      expect(res.body._id).toBe(ids[1]);
      expect(await storedIds(t, account)).toEqual(ids.slice(0, 3));
    });

    it('links again once an unlink has made room', async () => {
      await request(t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      await request(t.http).put(`/api/accounts/${account}/devices/rel/d4`).expect(200);
      expect(await storedIds(t, account)).toEqual([ids[1], ids[2], ids[3]]);
    });
  });
});
