import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createAccount, createDevice, createDevices, type DeviceBody, storedIds } from './support/bodies.js';
import { expectError, json } from './support/http.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const OBJECT_ID = /^[0-9a-f]{24}$/;
const UNKNOWN_ID = '0123456789abcdef01234567';

describe('Devices', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  describe('POST /api/devices', () => {
    it('creates a device and returns it with a string _id, timestamps and no __v', async () => {
      const res = await request(t.http).post('/api/devices').send({ myId: 'sensor-1', deviceUID: 'UID-1' }).expect(201);
      expect(res.body).toEqual({
        _id: expect.stringMatching(OBJECT_ID),
        myId: 'sensor-1',
        deviceUID: 'UID-1',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const stored = await t.devices.findById(res.body._id).lean();
      expect(stored?.myId).toBe('sensor-1');
    });

    it.each([
      ['a 24-hex myId, which would read as an ObjectId', { myId: 'a'.repeat(24), deviceUID: 'u' }, 'myId'],
      ['a route word as myId', { myId: 'count', deviceUID: 'u' }, 'myId'],
      ['forbidden characters in myId', { myId: 'has space', deviceUID: 'u' }, 'myId'],
      ['a myId longer than 128', { myId: 'x'.repeat(129), deviceUID: 'u' }, 'myId'],
      ['an empty myId', { myId: '', deviceUID: 'u' }, 'myId'],
      ['a missing deviceUID', { myId: 'ok' }, 'deviceUID'],
      ['a numeric deviceUID', { myId: 'ok', deviceUID: 5 }, 'deviceUID'],
      ['an unknown property', { myId: 'ok', deviceUID: 'u', extra: 1 }, 'extra'],
    ])('answers 400 naming the field for %s', async (_case, body, path) => {
      const res = await request(t.http).post('/api/devices').send(body).expect(400);
      expectError(res, 400, { including: [{ path }] });
      expect(await t.devices.countDocuments()).toBe(0);
    });

    it('answers 400 for a body that is not JSON', async () => {
      const res = await request(t.http).post('/api/devices').set('content-type', 'application/json').send('{"myId":').expect(400);
      expectError(res, 400, { including: [] });
      expect(res.body).not.toHaveProperty('stack');
    });

    it.each(['myId', 'deviceUID'])('answers 409 naming %s when it is already taken', async (field) => {
      await createDevice(t.http, 'first', 'UID-A');
      const body = field === 'myId' ? { myId: 'first', deviceUID: 'UID-B' } : { myId: 'second', deviceUID: 'UID-A' };
      const res = await request(t.http).post('/api/devices').send(body).expect(409);
      expectError(res, 409, [{ path: field, code: 'duplicate' }]);
      expect(res.body.message).toContain(field);
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });

  describe('GET /api/devices', () => {
    it('lists devices in creation order with X-Total-Count', async () => {
      await createDevice(t.http, 'd1');
      await createDevice(t.http, 'd2');
      const res = await request(t.http).get('/api/devices').expect(200);
      expect(res.headers['x-total-count']).toBe('2');
      expect(res.body.map((device: { myId: string }) => device.myId)).toEqual(['d1', 'd2']);
    });
  });

  describe('GET /api/devices/:id', () => {
    it('reads a device by its ObjectId and by its myId', async () => {
      const device = await createDevice(t.http, 'by-either');
      const byObjectId = await request(t.http).get(`/api/devices/${device._id}`).expect(200);
      const byMyId = await request(t.http).get('/api/devices/by-either').expect(200);
      expect(byObjectId.body).toEqual(device);
      expect(byMyId.body).toEqual(device);
    });

    it('answers 404 for an unknown ObjectId and an unknown myId', async () => {
      const res = await request(t.http).get(`/api/devices/${UNKNOWN_ID}`).expect(404);
      expectError(res, 404);
      expect(res.body.message).toContain(UNKNOWN_ID);
      await request(t.http).get('/api/devices/nobody').expect(404);
    });

    it('answers 400 for an id that is neither an ObjectId nor a myId', async () => {
      const res = await request(t.http)
        .get(`/api/devices/${encodeURIComponent('bad id!')}`)
        .expect(400);
      expectError(res, 400, [{ path: 'id', code: 'invalid_device_id' }]);
    });
  });

  describe('PATCH /api/devices/:id', () => {
    it('changes only the given fields', async () => {
      const device = await createDevice(t.http, 'patch-me', 'UID-OLD');
      const res = await request(t.http).patch('/api/devices/patch-me').send({ deviceUID: 'UID-NEW' }).expect(200);
      expect(res.body).toMatchObject({ _id: device._id, myId: 'patch-me', deviceUID: 'UID-NEW' });
      expect((await t.devices.findById(device._id).lean())?.deviceUID).toBe('UID-NEW');
    });

    it('answers 409 when the new myId is taken, and changes nothing', async () => {
      await createDevice(t.http, 'taken');
      const device = await createDevice(t.http, 'mine');
      await request(t.http).patch(`/api/devices/${device._id}`).send({ myId: 'taken' }).expect(409);
      expect((await t.devices.findById(device._id).lean())?.myId).toBe('mine');
    });

    it('answers 400 for an invalid field and 404 for an unknown device', async () => {
      await createDevice(t.http, 'valid');
      await request(t.http).patch('/api/devices/valid').send({ myId: 'rel' }).expect(400);
      await request(t.http).patch('/api/devices/unknown').send({ deviceUID: 'x' }).expect(404);
    });
  });

  describe('PUT /api/devices/:id', () => {
    it('replaces every field and keeps the _id', async () => {
      const device = await createDevice(t.http, 'old-name', 'UID-1');
      const res = await request(t.http).put(`/api/devices/${device._id}`).send({ myId: 'new-name', deviceUID: 'UID-2' }).expect(200);
      expect(res.body).toMatchObject({ _id: device._id, myId: 'new-name', deviceUID: 'UID-2' });
    });

    it('answers 400 when a field is missing', async () => {
      const device = await createDevice(t.http, 'whole');
      const res = await request(t.http).put(`/api/devices/${device._id}`).send({ myId: 'whole' }).expect(400);
      expect(res.body.details.map((detail: { path: string }) => detail.path)).toContain('deviceUID');
    });

    it('answers 404 for an unknown device', async () => {
      await request(t.http).put(`/api/devices/${UNKNOWN_ID}`).send({ myId: 'a', deviceUID: 'b' }).expect(404);
    });
  });

  describe('DELETE /api/devices/:id', () => {
    it('answers { count: 1 } and the device is gone', async () => {
      const device = await createDevice(t.http, 'doomed');
      const res = await request(t.http).delete(`/api/devices/${device._id}`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.devices.exists({ _id: device._id })).toBeNull();
      await request(t.http).get(`/api/devices/${device._id}`).expect(404);
    });

    it('removes the id from every account that referenced it', async () => {
      const keep = await createDevice(t.http, 'keep');
      const doomed = await createDevice(t.http, 'doomed');
      const first = await createAccount(t.http, ['doomed', 'keep'], 'first');
      const second = await createAccount(t.http, [keep._id, doomed._id], 'second');
      const bystander = await createAccount(t.http, ['keep'], 'bystander');

      await request(t.http).delete('/api/devices/doomed').expect(200);

      // Read through the model, not only over HTTP: the stored arrays are what must be clean.
      for (const account of [first, second, bystander]) expect(await storedIds(t, account)).toEqual([keep._id]);
      expect(await t.accounts.countDocuments({ deviceIds: doomed._id })).toBe(0);
    });

    it('answers 404 for an unknown device and deletes nothing', async () => {
      await createDevice(t.http, 'survivor');
      const res = await request(t.http).delete('/api/devices/ghost').expect(404);
      expectError(res, 404);
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });

  describe('with five devices', () => {
    let d: Record<'d1' | 'd2' | 'd3' | 'd4' | 'd5', DeviceBody>;

    beforeEach(async () => {
      d = await createDevices(t.http, ['d1', 'd2', 'd3', 'd4', 'd5']);
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
        expect((await request(t.http).get('/api/devices/findOne?filter[where][myId][gt]=d2&filter[skip]=1').expect(200)).body).toEqual(
          d.d4,
        );
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
  });
});
