import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import { Types } from 'mongoose';
import request, { type Response } from 'supertest';
import { createAccount, createDevice, createDevices, type DeviceBody, myIds, seedDevices, storedIds } from './support/bodies.js';
import { CommandRecorder, type SentCommand } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { expectError, json } from './support/http.js';
import { appUnderTest, createTestApp, type TestApp } from './support/test-app.js';

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
  const app = appUnderTest({ config: { relation: { maxDevicesPerAccount: 3 } } });
  let account: string;
  let ids: string[];

  beforeEach(async () => {
    ids = await seedDevices(app.t, ['d1', 'd2', 'd3', 'd4']);
    account = (await app.t.accounts.create({ name: 'full', deviceIds: ids.slice(0, 3) }))._id.toHexString();
  });

  describe('PUT /api/accounts/:id/devices/rel/:fk', () => {
    it.each([
      ['ObjectId', () => ids[3]],
      ['myId', () => 'd4'],
    ])('answers 422 too_many_devices for a new device by %s on a full account, and writes nothing', async (_case, fk) => {
      const res = await request(app.t.http).put(`/api/accounts/${account}/devices/rel/${fk()}`).expect(422);
      expectError(res, 422, [{ path: 'fk', code: 'too_many_devices' }]);
      expect(await storedIds(app.t, account)).toEqual(ids.slice(0, 3));
    });

    it('answers 200 for a device the full account already holds, and keeps one copy', async () => {
      const res = await request(app.t.http).put(`/api/accounts/${account}/devices/rel/d2`).expect(200);
      expect(res.body._id).toBe(ids[1]);
      expect(await storedIds(app.t, account)).toEqual(ids.slice(0, 3));
    });

    it('links again once an unlink has made room', async () => {
      await request(app.t.http).delete(`/api/accounts/${account}/devices/rel/d1`).expect(204);
      await request(app.t.http).put(`/api/accounts/${account}/devices/rel/d4`).expect(200);
      expect(await storedIds(app.t, account)).toEqual([ids[1], ids[2], ids[3]]);
    });
  });
});

describe('Link at a position', () => {
  const app = appUnderTest();
  let devices: Record<string, DeviceBody>;

  beforeEach(async () => {
    devices = {};
    for (const myId of ['a', 'b', 'c', 'x', 'y', 'z']) devices[myId] = await app.api.device(myId);
  });

  const link = (account: string, fk: string, position?: string) =>
    request(app.t.http)
      .put(`/api/accounts/${account}/devices/rel/${fk}`)
      .query(position === undefined ? {} : { position });
  const linkMany = (account: string, ids: string[], position?: string) =>
    request(app.t.http)
      .post(`/api/accounts/${account}/devices/rel`)
      .query(position === undefined ? {} : { position })
      .send({ ids });
  const stored = async (account: string) => {
    const ids = (await app.t.accounts.findById(account).lean())!.deviceIds.map(String);
    const myIdOf = new Map(Object.values(devices).map((device) => [device._id, device.myId]));
    return ids.map((id) => myIdOf.get(id) ?? id);
  };

  describe('PUT /api/accounts/:id/devices/rel/:fk?position=', () => {
    it.each([
      ['start', ['x', 'a', 'b', 'c']],
      ['end', ['a', 'b', 'c', 'x']],
      ['before:b', ['a', 'x', 'b', 'c']],
      ['after:b', ['a', 'b', 'x', 'c']],
      ['before:a', ['x', 'a', 'b', 'c']],
      ['after:c', ['a', 'b', 'c', 'x']],
    ])('puts a new device at %s', async (position, expected) => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      const res = await link(account._id, 'x', position).expect(200);
      expect(res.body).toMatchObject({ _id: devices.x._id, myId: 'x' });
      expect(await stored(account._id)).toEqual(expected);
      expect(await app.api.myIds(account._id)).toEqual(expected);
    });

    it('names the device and the anchor by ObjectId or myId alike', async () => {
      const account = await app.api.account('home', ['a', 'b']);
      await link(account._id, devices.x._id, `before:${devices.b._id}`).expect(200);
      await link(account._id, 'y', `after:${devices.a._id}`).expect(200);
      await link(account._id, devices.z._id, 'after:b').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'y', 'x', 'b', 'z']);
    });

    it('leaves a linked device where it is without a position, and moves it with one', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c', 'x']);
      await link(account._id, 'b').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x']);
      await link(account._id, 'b', 'start').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'a', 'c', 'x']);
      await link(account._id, 'b', 'end').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'c', 'x', 'b']);
      await link(account._id, 'b', 'before:c').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x']);
      await link(account._id, 'a', 'after:x').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'c', 'x', 'a']);
    });

    it.each(['start', 'end', 'before:c', 'after:a'])(
      'is idempotent at %s: asked again, the list and its ETag stay as they are',
      async (position) => {
        const account = await app.api.account('home', ['a', 'b', 'c']);
        await link(account._id, 'x', position).expect(200);
        const once = await stored(account._id);
        const etag = await app.api.etag(`/api/accounts/${account._id}`);
        await link(account._id, 'x', position).expect(200);
        await link(account._id, devices.x._id, position).expect(200);
        expect(await stored(account._id)).toEqual(once);
        expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
      },
    );

    it.each([
      ['a word it does not know', 'middle'],
      ['an empty anchor', 'before:'],
      ['an anchor that is no device id', 'after:has space'],
      ['an anchor that is a route word', 'before:count'],
      ['the wrong case', 'START'],
      ['no side', ':b'],
    ])('answers 400 naming position for %s, and changes nothing', async (_case, position) => {
      const account = await app.api.account('home', ['a', 'b']);
      expectError(await link(account._id, 'x', position), 400, { including: [{ path: 'position', code: 'invalid_position' }] });
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it('answers 400 naming position when it is given twice', async () => {
      const account = await app.api.account('home', ['a', 'b']);
      const res = await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/x?position=start&position=end`);
      expectError(res, 400, { including: [{ path: 'position', code: 'invalid_position' }] });
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it.each([
      ['a device that is not linked', 'before:c', 'anchor_not_linked'],
      ['a device that does not exist (myId)', 'after:nowhere', 'anchor_not_linked'],
      ['a device that does not exist (ObjectId)', `after:${UNKNOWN_ID}`, 'anchor_not_linked'],
      ['the device being linked', 'before:x', 'anchor_placed'],
    ])('answers 422 naming position for an anchor that is %s, and changes nothing', async (_case, position, code) => {
      const account = await app.api.account('home', ['a', 'b', 'x']);
      const etag = await app.api.etag(`/api/accounts/${account._id}`);
      expectError(await link(account._id, 'x', position), 422, { including: [{ path: 'position', code }] });
      expectError(await link(account._id, 'y', position === 'before:x' ? 'before:y' : position), 422, {
        including: [{ path: 'position', code }],
      });
      expect(await stored(account._id)).toEqual(['a', 'b', 'x']);
      expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
    });

    it.each(['start', 'end', 'after:a'])('answers 404 for an unknown device at %s and leaves the list as it was', async (position) => {
      const account = await app.api.account('home', ['a', 'b']);
      expect((await link(account._id, UNKNOWN_ID, position)).status).toBe(404);
      expect((await link(account._id, 'nowhere', position)).status).toBe(404);
      expect(await stored(account._id)).toEqual(['a', 'b']);
    });

    it('answers 404 for an unknown account', async () => {
      const res = await link(UNKNOWN_ID, 'x', 'start');
      expect(res.status).toBe(404);
      expect(res.body.message).toBe(`Account ${UNKNOWN_ID} not found`);
    });
  });

  describe('POST /api/accounts/:id/devices/rel?position=', () => {
    it.each([
      ['start', ['x', 'y', 'a', 'b', 'c']],
      ['end', ['a', 'b', 'c', 'x', 'y']],
      ['before:b', ['a', 'x', 'y', 'b', 'c']],
      ['after:b', ['a', 'b', 'x', 'y', 'c']],
    ])('places new devices at %s as one block, in the order given', async (position, expected) => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      const res = await linkMany(account._id, ['x', devices.y._id], position).expect(200);
      expect(res.body.deviceIds).toEqual(expected.map((myId) => devices[myId]._id));
      expect(res.headers.etag).toBe(await app.api.etag(`/api/accounts/${account._id}`));
      expect(await stored(account._id)).toEqual(expected);
    });

    it('moves the linked ones among them into the block; without a position they stay and new ones are appended', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c', 'x']);
      await linkMany(account._id, ['y', 'c', 'a']).expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'c', 'x', 'y']);
      await linkMany(account._id, ['y', 'c', 'a'], 'after:x').expect(200);
      expect(await stored(account._id)).toEqual(['b', 'x', 'y', 'c', 'a']);
      await linkMany(account._id, ['a', 'b'], 'start').expect(200);
      expect(await stored(account._id)).toEqual(['a', 'b', 'x', 'y', 'c']);
      // The same request again finds everything in place and writes nothing.
      const etag = await app.api.etag(`/api/accounts/${account._id}`);
      await linkMany(account._id, ['a', 'b'], 'start').expect(200);
      expect(await app.api.etag(`/api/accounts/${account._id}`)).toBe(etag);
    });

    it('is all or nothing: an unknown id among them is a 422 naming it, and nothing moves', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      expectError(await linkMany(account._id, ['c', 'nowhere', 'x'], 'start'), 422, {
        including: [{ path: 'ids[1]', code: 'unknown_device' }],
      });
      expect(await stored(account._id)).toEqual(['a', 'b', 'c']);
    });

    it('answers 422 naming position for an anchor among the ids placed, or not linked, even with no ids, and changes nothing', async () => {
      const account = await app.api.account('home', ['a', 'b', 'c']);
      expectError(await linkMany(account._id, ['x', 'b'], 'after:b'), 422, { including: [{ path: 'position', code: 'anchor_placed' }] });
      expectError(await linkMany(account._id, ['x'], 'after:y'), 422, { including: [{ path: 'position', code: 'anchor_not_linked' }] });
      expectError(await linkMany(account._id, [], 'after:y'), 422, { including: [{ path: 'position', code: 'anchor_not_linked' }] });
      expect(await stored(account._id)).toEqual(['a', 'b', 'c']);
    });

    it('is documented on both link routes, with a pattern that admits its examples and refuses what the service refuses', async () => {
      interface Parameter {
        name: string;
        in: string;
        schema: { pattern: string };
        examples: Record<string, { value: string }>;
      }
      const { paths } = (await request(app.t.http).get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<string, { parameters: Parameter[]; responses: Record<string, unknown> }>>;
      };
      for (const [method, path] of [
        ['put', '/api/accounts/{id}/devices/rel/{fk}'],
        ['post', '/api/accounts/{id}/devices/rel'],
      ]) {
        const position = paths[path][method].parameters.find((parameter) => parameter.name === 'position')!;
        expect(position.in).toBe('query');
        const pattern = new RegExp(position.schema.pattern);
        // The first example is the empty "not given" (Swagger UI fills a parameter in with its
        // first example: a position sent by default would move devices); the others are values.
        const [notGiven, ...values] = Object.values(position.examples);
        expect(notGiven.value).toBe('');
        expect(values.length).toBeGreaterThanOrEqual(3);
        for (const { value } of values) expect(pattern.test(value)).toBe(true);
        for (const value of ['middle', 'before:', 'after:count', 'START', 'before:has space']) expect(pattern.test(value)).toBe(false);
        expect(JSON.stringify(paths[path][method].responses['422'])).toContain('anchor_not_linked');
        expect(JSON.stringify(paths[path][method].responses['400'])).toContain('invalid_position');
      }
    });

    it('answers 400 naming position for a malformed one before it looks at the ids', async () => {
      const account = await app.api.account('home', ['a']);
      expectError(await linkMany(account._id, ['nowhere'], 'first'), 400, { including: [{ path: 'position', code: 'invalid_position' }] });
      expect(await stored(account._id)).toEqual(['a']);
    });
  });
});

describe('Link at a position, at the size limit', () => {
  const app = appUnderTest({ config: { relation: { maxDevicesPerAccount: 3 } } });

  beforeEach(async () => {
    for (const myId of ['a', 'b', 'c', 'x', 'y']) await app.api.device(myId);
  });

  it.each(['start', 'end', 'before:b', 'after:b'])(
    'refuses a new device at %s in a full list (422), and still moves a linked one there',
    async (position) => {
      const account = await app.api.account('full', ['a', 'b', 'c']);
      const refused = await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/x`).query({ position });
      expectError(refused, 422, { including: [{ path: 'fk', code: 'too_many_devices' }] });
      const many = await request(app.t.http)
        .post(`/api/accounts/${account._id}/devices/rel`)
        .query({ position })
        .send({ ids: ['x'] });
      expectError(many, 422, { including: [{ path: 'ids', code: 'too_many_devices' }] });
      expect(await app.api.myIds(account._id)).toEqual(['a', 'b', 'c']);

      const mover = position.endsWith(':b') ? 'c' : 'b';
      await request(app.t.http).put(`/api/accounts/${account._id}/devices/rel/${mover}`).query({ position }).expect(200);
      expect((await app.api.myIds(account._id)).sort()).toEqual(['a', 'b', 'c']);
    },
  );

  it('admits new ids up to the limit exactly, with one place left', async () => {
    const account = await app.api.account('almost', ['a']);
    await request(app.t.http)
      .post(`/api/accounts/${account._id}/devices/rel`)
      .query({ position: 'start' })
      .send({ ids: ['x', 'y'] })
      .expect(200);
    expect(await app.api.myIds(account._id)).toEqual(['x', 'y', 'a']);
    const over = await request(app.t.http)
      .post(`/api/accounts/${account._id}/devices/rel`)
      .query({ position: 'before:a' })
      .send({ ids: ['b'] });
    expectError(over, 422, { including: [{ path: 'ids', code: 'too_many_devices' }] });
  });
});

describe('Link at a position under concurrent requests', () => {
  const app = appUnderTest({}, { listening: true });

  /**
   * Sends a request until it gets an answer other than 503 (the relation gives up on a list
   * that keeps changing under it and says so; a client tries again), at most 5 times.
   */
  async function settled(send: () => Promise<Response>, busy: { count: number }): Promise<Response> {
    for (let attempt = 1; ; attempt += 1) {
      const res = await send();
      if (res.status !== 503 || attempt === 5) return res;
      busy.count += 1;
    }
  }

  it('keeps every device exactly once, each on its side of the anchor, over 6 rounds of 12 mixed links', async () => {
    await app.api.device('anchor');
    const account = (await app.api.account('busy', ['anchor']))._id;
    const positions = ['start', 'end', 'before:anchor', 'after:anchor'];
    const side = new Map<string, 'before' | 'after'>();
    const busy = { count: 0 };
    for (let round = 0; round < 6; round += 1) {
      const fresh = await Promise.all(Array.from({ length: 12 }, (_, i) => app.api.device(`r${round}-${i}`)));
      // Half named by ObjectId, half by myId; each position taken by three of the twelve.
      const calls = fresh.map((device, i) => {
        const position = positions[(i + round) % positions.length];
        side.set(device.myId, position === 'start' || position === 'before:anchor' ? 'before' : 'after');
        const fk = i % 2 === 0 ? device._id : device.myId;
        return () => settled(() => request(app.server).put(`/api/accounts/${account}/devices/rel/${fk}`).query({ position }), busy);
      });
      const responses = await Promise.all(calls.map((call) => call()));
      expect(responses.map((res) => res.status)).toEqual(fresh.map(() => 200));
    }

    const myIds = await app.api.myIds(account);
    expect(myIds).toHaveLength(6 * 12 + 1);
    expect(new Set(myIds).size).toBe(myIds.length);
    const anchorAt = myIds.indexOf('anchor');
    const misplaced = myIds.filter((myId, index) => myId !== 'anchor' && (index < anchorAt ? 'before' : 'after') !== side.get(myId));
    expect(misplaced).toEqual([]);
    const stored = (await app.t.accounts.findById(account).lean())!.deviceIds.map(String);
    expect(new Set(stored).size).toBe(6 * 12 + 1);
    // Printed for the record: how often the compare-and-set gave up (503) and a retry went through.
    console.log(`concurrent positioned links: ${busy.count} answers 503 retried`);
  });

  it('loses no device when moves race links of new devices on one list, over 6 rounds', async () => {
    const names = ['m0', 'm1', 'm2', 'm3'];
    for (const myId of names) await app.api.device(myId);
    const account = (await app.api.account('moving', names))._id;
    const busy = { count: 0 };
    for (let round = 0; round < 6; round += 1) {
      const fresh = await Promise.all(Array.from({ length: 4 }, (_, i) => app.api.device(`n${round}-${i}`)));
      const moves = names.map(
        (myId, i) => () =>
          settled(
            () =>
              request(app.server)
                .put(`/api/accounts/${account}/devices/rel/${myId}`)
                .query({ position: i % 2 === 0 ? 'start' : `after:${names[(i + 1) % names.length]}` }),
            busy,
          ),
      );
      const links = fresh.map(
        (device, i) => () =>
          settled(
            () =>
              request(app.server)
                .post(`/api/accounts/${account}/devices/rel`)
                .query(i % 2 === 0 ? {} : { position: 'end' })
                .send({ ids: [device.myId] }),
            busy,
          ),
      );
      const responses = await Promise.all([...moves, ...links].map((call) => call()));
      expect(responses.map((res) => res.status)).toEqual([...moves, ...links].map(() => 200));
      const myIds = await app.api.myIds(account);
      expect(myIds).toHaveLength(names.length + 4 * (round + 1));
      expect(new Set(myIds).size).toBe(myIds.length);
    }
    console.log(`concurrent moves and links: ${busy.count} answers 503 retried`);
  });

  it('leaves no account referencing a device deleted while it is linked at positions, over 10 rounds', async () => {
    await app.api.device('keeper');
    const accounts = [(await app.api.account('p', ['keeper']))._id, (await app.api.account('q', ['keeper']))._id];
    const positions = ['start', 'end', 'before:keeper', 'after:keeper'];
    for (let round = 0; round < 10; round += 1) {
      const device = await app.api.device(`doomed-${round}`);
      const links = accounts.flatMap((account) =>
        positions.map(
          (position, i) => () =>
            request(app.server)
              .put(`/api/accounts/${account}/devices/rel/${i % 2 === 0 ? device._id : device.myId}`)
              .query({ position }),
        ),
      );
      const remove = () => request(app.server).delete(`/api/devices/${device._id}`);
      const calls = [...links];
      calls.splice(round % (links.length + 1), 0, remove);
      const responses = await Promise.all(calls.map((call) => call()));
      for (const res of responses) expect([200, 404]).toContain(res.status);
      expect(await app.t.accounts.countDocuments({ deviceIds: device._id })).toBe(0);
    }
    for (const account of accounts) expect(await app.api.myIds(account)).toEqual(['keeper']);
  });
});

/**
 * The relation's long-list operations cost a number of database commands that grows with the
 * list, in batches, never a command per id, and carry each id a bounded number of times, never
 * the whole list per batch: counted on the wire at 1,000 and 5,000 references. (How long they
 * take is the benchmark's: bench/.)
 */

const SIZES = [1_000, 5_000] as const;
/** Linear growth from 1,000 to 5,000 is at most 5×; a quadratic cost would be 25×. */
const GROWTH_BOUND = 5.5;
/** Batched: at least this many ids per command on average (a per-id loop is 1). */
const IDS_PER_COMMAND = 25;

/** How many ObjectIds a command carries, wherever in it they are. */
function objectIdsIn(value: unknown): number {
  if (value instanceof ObjectId) return 1;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + objectIdsIn(item), 0);
  if (typeof value === 'object' && value !== null) return Object.values(value).reduce((sum: number, item) => sum + objectIdsIn(item), 0);
  return 0;
}

interface Cost {
  commands: number;
  objectIds: number;
  byName: Record<string, number>;
}

function costOf(sent: readonly SentCommand[]): Cost {
  const byName: Record<string, number> = {};
  for (const command of sent) byName[command.name] = (byName[command.name] ?? 0) + 1;
  return { commands: sent.length, objectIds: sent.reduce((sum, command) => sum + objectIdsIn(command.body), 0), byName };
}

describe('The relation at 1,000 and 5,000 references: database commands grow linearly', () => {
  let t: TestApp;
  let recorder: CommandRecorder;
  let inspector: MongoClient;
  let db: Db;

  beforeAll(async () => {
    // Metrics on, so the service's client monitors its commands; long operations on the slow
    // embedded engine get the time they need (their speed is not what is measured here).
    t = await createTestApp({ config: { metrics: { mode: 'public' }, http: { requestTimeoutMs: 240_000 } } });
    recorder = new CommandRecorder(t.connection.getClient());
    inspector = await MongoClient.connect(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 });
    db = inspector.db();
  });
  afterAll(async () => {
    recorder.stop();
    await inspector.close();
    await t.close();
  });
  beforeEach(async () => {
    await Promise.all([db.collection('devices').deleteMany({}), db.collection('accounts').deleteMany({})]);
  });

  /** `size` devices, and an account holding `linked` of them. */
  async function seed(size: number, linked: boolean): Promise<{ account: string; ids: ObjectId[] }> {
    const ids = Array.from({ length: size }, () => new ObjectId());
    const now = new Date();
    for (let start = 0; start < size; start += 1_000) {
      await db
        .collection('devices')
        .insertMany(
          ids
            .slice(start, start + 1_000)
            .map((_id, i) => ({ _id, myId: `s-${start + i}`, deviceUID: `UID-s-${start + i}`, rev: 0, createdAt: now, updatedAt: now })),
        );
    }
    const { insertedId } = await db
      .collection('accounts')
      .insertOne({ name: 'scale', deviceIds: linked ? ids : [], rev: 0, createdAt: now, updatedAt: now });
    return { account: insertedId.toHexString(), ids };
  }

  function expectLinear(costs: Cost[], what: string): void {
    const [small, large] = costs;
    console.log(
      `${what}: ${SIZES.map((size, i) => `${size} refs → ${costs[i].commands} commands (${JSON.stringify(costs[i].byName)}), ${costs[i].objectIds} ObjectIds sent`).join('; ')}`,
    );
    SIZES.forEach((size, i) =>
      expect({ size, commands: costs[i].commands <= size / IDS_PER_COMMAND + 10 }).toEqual({ size, commands: true }),
    );
    expect(large.commands).toBeLessThanOrEqual(GROWTH_BOUND * small.commands);
    expect(large.objectIds).toBeLessThanOrEqual(GROWTH_BOUND * small.objectIds);
  }

  it('POST /api/accounts/:id/devices/rel (link many) sends batched commands, and carries each id a bounded number of times', async () => {
    const costs: Cost[] = [];
    for (const size of SIZES) {
      const { account, ids } = await seed(size, false);
      recorder.clear();
      const res = await request(t.http)
        .post(`/api/accounts/${account}/devices/rel`)
        .send({ ids: ids.map((id) => id.toHexString()) });
      expect(res.status).toBe(200);
      costs.push(costOf(recorder.sent));
      expect(res.body.deviceIds).toEqual(ids.map((id) => id.toHexString()));
      await Promise.all([db.collection('devices').deleteMany({}), db.collection('accounts').deleteMany({})]);
    }
    expectLinear(costs, 'link many');
  }, 600_000);

  it('DELETE /api/accounts/:id/devices (its devices, the sweeper’s removal included) sends batched commands, and carries each id a bounded number of times', async () => {
    const costs: Cost[] = [];
    for (const size of SIZES) {
      const { account } = await seed(size, true);
      recorder.clear();
      const res = await request(t.http).delete(`/api/accounts/${account}/devices`);
      expect(res.body).toEqual({ count: size });
      // The removal is the sweeper's, about a second later: it belongs to the deletion's cost.
      expect(await eventually(async () => (await db.collection('devices').countDocuments()) === 0, { timeoutMs: 120_000 })).toBe(true);
      costs.push(costOf(recorder.sent));
      expect((await db.collection('accounts').findOne({ name: 'scale' }))?.deviceIds).toEqual([]);
    }
    expectLinear(costs, 'delete all of an account’s devices');
  }, 600_000);
});
