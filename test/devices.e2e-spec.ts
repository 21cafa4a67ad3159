import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';

const OBJECT_ID = /^[0-9a-f]{24}$/;

describe('Devices', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(() => t.clear());

  const createDevice = (myId: string, deviceUID = `uid-${myId}`) =>
    request(t.http)
      .post('/api/devices')
      .send({ myId, deviceUID })
      .expect(201)
      .then((res) => res.body);

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
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.any(String) });
      expect(res.body.details.map((detail: { path: string }) => detail.path)).toContain(path);
      expect(await t.devices.countDocuments()).toBe(0);
    });

    it('answers 400 for a body that is not JSON', async () => {
      const res = await request(t.http).post('/api/devices').set('content-type', 'application/json').send('{"myId":').expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(res.body).not.toHaveProperty('stack');
    });

    it.each(['myId', 'deviceUID'])('answers 409 naming %s when it is already taken', async (field) => {
      await createDevice('first', 'UID-A');
      const body = field === 'myId' ? { myId: 'first', deviceUID: 'UID-B' } : { myId: 'second', deviceUID: 'UID-A' };
      const res = await request(t.http).post('/api/devices').send(body).expect(409);
      expect(res.body).toEqual({
        statusCode: 409,
        error: 'Conflict',
        message: expect.stringContaining(field),
        details: [{ path: field, code: 'duplicate', message: expect.any(String) }],
      });
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });

  describe('GET /api/devices', () => {
    it('lists devices in creation order with X-Total-Count', async () => {
      await createDevice('d1');
      await createDevice('d2');
      const res = await request(t.http).get('/api/devices').expect(200);
      expect(res.headers['x-total-count']).toBe('2');
      expect(res.body.map((device: { myId: string }) => device.myId)).toEqual(['d1', 'd2']);
    });
  });

  describe('GET /api/devices/:id', () => {
    it('reads a device by its ObjectId and by its myId', async () => {
      const device = await createDevice('by-either');
      const byObjectId = await request(t.http).get(`/api/devices/${device._id}`).expect(200);
      const byMyId = await request(t.http).get('/api/devices/by-either').expect(200);
      expect(byObjectId.body).toEqual(device);
      expect(byMyId.body).toEqual(device);
    });

    it('answers 404 for an unknown ObjectId and an unknown myId', async () => {
      const res = await request(t.http).get('/api/devices/0123456789abcdef01234567').expect(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: expect.stringContaining('0123456789abcdef01234567') });
      await request(t.http).get('/api/devices/nobody').expect(404);
    });

    it('answers 400 for an id that is neither an ObjectId nor a myId', async () => {
      const res = await request(t.http)
        .get(`/api/devices/${encodeURIComponent('bad id!')}`)
        .expect(400);
      expect(res.body.details).toEqual([{ path: 'id', code: 'invalid_device_id', message: expect.any(String) }]);
    });
  });

  describe('PATCH /api/devices/:id', () => {
    it('changes only the given fields', async () => {
      const device = await createDevice('patch-me', 'UID-OLD');
      const res = await request(t.http).patch('/api/devices/patch-me').send({ deviceUID: 'UID-NEW' }).expect(200);
      expect(res.body).toMatchObject({ _id: device._id, myId: 'patch-me', deviceUID: 'UID-NEW' });
      expect((await t.devices.findById(device._id).lean())?.deviceUID).toBe('UID-NEW');
    });

    it('answers 409 when the new myId is taken, and changes nothing', async () => {
      await createDevice('taken');
      const device = await createDevice('mine');
      await request(t.http).patch(`/api/devices/${device._id}`).send({ myId: 'taken' }).expect(409);
      expect((await t.devices.findById(device._id).lean())?.myId).toBe('mine');
    });

    it('answers 400 for an invalid field and 404 for an unknown device', async () => {
      await createDevice('valid');
      await request(t.http).patch('/api/devices/valid').send({ myId: 'rel' }).expect(400);
      await request(t.http).patch('/api/devices/unknown').send({ deviceUID: 'x' }).expect(404);
    });
  });

  describe('PUT /api/devices/:id', () => {
    it('replaces every field and keeps the _id', async () => {
      const device = await createDevice('old-name', 'UID-1');
      const res = await request(t.http).put(`/api/devices/${device._id}`).send({ myId: 'new-name', deviceUID: 'UID-2' }).expect(200);
      expect(res.body).toMatchObject({ _id: device._id, myId: 'new-name', deviceUID: 'UID-2' });
    });

    it('answers 400 when a field is missing', async () => {
      const device = await createDevice('whole');
      const res = await request(t.http).put(`/api/devices/${device._id}`).send({ myId: 'whole' }).expect(400);
      expect(res.body.details.map((detail: { path: string }) => detail.path)).toContain('deviceUID');
    });

    it('answers 404 for an unknown device', async () => {
      await request(t.http).put('/api/devices/0123456789abcdef01234567').send({ myId: 'a', deviceUID: 'b' }).expect(404);
    });
  });

  describe('DELETE /api/devices/:id', () => {
    it('answers { count: 1 } and the device is gone', async () => {
      const device = await createDevice('doomed');
      const res = await request(t.http).delete(`/api/devices/${device._id}`).expect(200);
      expect(res.body).toEqual({ count: 1 });
      expect(await t.devices.exists({ _id: device._id })).toBeNull();
      await request(t.http).get(`/api/devices/${device._id}`).expect(404);
    });

    it('removes the id from every account that referenced it', async () => {
      const keep = await createDevice('keep');
      const doomed = await createDevice('doomed');
      const first = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'first', deviceIds: ['doomed', 'keep'] })
        .expect(201);
      const second = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'second', deviceIds: [keep._id, doomed._id] })
        .expect(201);
      const bystander = await request(t.http)
        .post('/api/accounts')
        .send({ name: 'bystander', deviceIds: ['keep'] })
        .expect(201);

      await request(t.http).delete('/api/devices/doomed').expect(200);

      // Read through the model, not only over HTTP: the stored arrays are what must be clean.
      for (const account of [first.body, second.body, bystander.body]) {
        const stored = await t.accounts.findById(account._id).lean();
        expect(stored?.deviceIds.map(String)).toEqual([keep._id]);
      }
      expect(await t.accounts.countDocuments({ deviceIds: doomed._id })).toBe(0);
    });

    it('answers 404 for an unknown device and deletes nothing', async () => {
      await createDevice('survivor');
      const res = await request(t.http).delete('/api/devices/ghost').expect(404);
      expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
      expect(await t.devices.countDocuments()).toBe(1);
    });
  });
});
