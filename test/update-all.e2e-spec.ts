import { beforeEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { appUnderTest, expectErrorAt } from './support/api-client.js';

const where = (value: object) => ({ where: JSON.stringify(value) });

describe('updateAll', () => {
  const app = appUnderTest();

  const devicesUpdate = (query: object | string, body: object) => request(app.t.http).post('/api/devices/update').query(query).send(body);
  const accountsUpdate = (query: object | string, body: object) => request(app.t.http).post('/api/accounts/update').query(query).send(body);
  /** Every device as stored, by myId: what a refused request must leave as it was. */
  const devicesNow = async () =>
    Object.fromEntries(
      (
        await app.t.devices
          .find({}, { rev: 1, myId: 1, deviceUID: 1, updatedAt: 1 })
          .lean<Array<{ myId: string; deviceUID: string; rev: number }>>()
      ).map((d) => [d.myId, d]),
    );
  const accountsNow = () => app.t.accounts.find({}, { rev: 1, name: 1, deviceIds: 1, updatedAt: 1 }).sort({ _id: 1 }).lean();

  describe('POST /api/devices/update?where=', () => {
    beforeEach(async () => {
      for (const myId of ['therm-1', 'therm-2', 'lamp-1']) await app.api.device(myId);
    });

    it('changes the one device where matches and answers { count: 1 }', async () => {
      const res = await devicesUpdate(where({ myId: 'lamp-1' }), { deviceUID: 'UID-NEW' }).expect(200);
      expect(res.body).toEqual({ count: 1 });
      const now = await devicesNow();
      expect(now['lamp-1'].deviceUID).toBe('UID-NEW');
      expect(now['therm-1'].deviceUID).toBe('uid-therm-1');
    });

    it('answers { count: 0 } when nothing matches, and changes nothing', async () => {
      const before = await devicesNow();
      await devicesUpdate(where({ myId: 'nowhere' }), { deviceUID: 'UID-NEW' }).expect(200, { count: 0 });
      expect(await devicesNow()).toEqual(before);
    });

    it('reads where as the count route does: JSON or bracket form, a myId wherever a device id goes', async () => {
      const lamp = (await app.t.devices.findOne({ myId: 'lamp-1' }).lean())!;
      await devicesUpdate(where({ _id: 'lamp-1' }), { myId: 'lamp-one' }).expect(200, { count: 1 });
      await devicesUpdate({ 'where[myId][like]': '^lamp-o' }, { deviceUID: 'UID-L1' }).expect(200, { count: 1 });
      expect(await app.t.devices.findById(lamp._id).lean()).toMatchObject({ myId: 'lamp-one', deviceUID: 'UID-L1' });
      const counted = await request(app.t.http).get('/api/devices/count').query({ 'where[myId][like]': '^therm' }).expect(200);
      const touched = await devicesUpdate({ 'where[myId][like]': '^therm' }, {}).expect(200);
      expect(touched.body).toEqual(counted.body);
      expect(counted.body).toEqual({ count: 2 });
    });

    it.each([
      ['myId', { myId: 'therm-x' }],
      ['deviceUID', { deviceUID: 'UID-X' }],
    ])('answers 409 naming %s when where matches two devices, and changes nothing', async (field, body) => {
      const before = await devicesNow();
      expectErrorAt(await devicesUpdate(where({ myId: { like: '^therm' } }), body), 409, field, 'duplicate');
      expectErrorAt(await devicesUpdate({ all: 'true' }, body), 409, field, 'duplicate');
      expect(await devicesNow()).toEqual(before);
    });

    it("answers 409 naming the field when the new value is another device's, and changes nothing", async () => {
      const before = await devicesNow();
      expectErrorAt(await devicesUpdate(where({ myId: 'lamp-1' }), { myId: 'therm-1' }), 409, 'myId', 'duplicate');
      expectErrorAt(await devicesUpdate(where({ myId: 'lamp-1' }), { deviceUID: 'uid-therm-2' }), 409, 'deviceUID', 'duplicate');
      expect(await devicesNow()).toEqual(before);
    });

    it.each([
      ['missing', {}],
      ['empty JSON', where({})],
      ['an empty string', { where: '' }],
      ['given with all=false', { ...where({}), all: 'false' }],
    ])('answers 400 naming where when it is %s, and changes nothing', async (_case, query) => {
      const before = await devicesNow();
      expectErrorAt(await devicesUpdate(query, {}), 400, 'where', 'required');
      expect(await devicesNow()).toEqual(before);
    });

    it('changes every device with all=true and no where', async () => {
      const before = await devicesNow();
      await devicesUpdate({ all: 'true' }, {}).expect(200, { count: 3 });
      const after = await devicesNow();
      for (const myId of Object.keys(before)) expect(after[myId].rev).toBe(before[myId].rev + 1);
    });

    it.each(['yes', '1', 'TRUE'])('answers 400 naming all for all=%s', async (all) => {
      expectErrorAt(await devicesUpdate({ all }, {}), 400, 'all', 'invalid_boolean');
    });

    it('answers 400 naming the path for a where the filter language refuses', async () => {
      expectErrorAt(await devicesUpdate(where({ colour: 'red' }), {}), 400, 'where.colour', 'unknown_field');
      expectErrorAt(await devicesUpdate({ where: '{not json' }, {}), 400, 'where', 'invalid_json');
    });

    it('validates the body as PATCH does, and changes nothing', async () => {
      const before = await devicesNow();
      expectErrorAt(await devicesUpdate(where({ myId: 'lamp-1' }), { colour: 'red' }), 400, 'colour', 'unknown_property');
      expectErrorAt(await devicesUpdate(where({ myId: 'lamp-1' }), { myId: 'count' }), 400, 'myId', 'isMyId');
      expectErrorAt(await devicesUpdate(where({ myId: 'lamp-1' }), { deviceUID: null }), 400, 'deviceUID', 'isString');
      expect(await devicesNow()).toEqual(before);
    });

    it('leaves a device whose deletion has begun alone: not counted, not changed', async () => {
      const lamp = (await app.t.devices.findOne({ myId: 'lamp-1' }).lean())!;
      await app.t.devices.collection.updateOne({ _id: lamp._id }, { $set: { deletingSince: new Date() } });
      await devicesUpdate({ all: 'true' }, {}).expect(200, { count: 2 });
      await devicesUpdate(where({ _id: lamp._id.toHexString() }), { deviceUID: 'UID-GHOST' }).expect(200, { count: 0 });
      const stored = await app.t.devices.collection.findOne({ _id: lamp._id });
      expect(stored).toMatchObject({ deviceUID: lamp.deviceUID, rev: 0 });
    });

    it('moves on the ETag of the device it changes', async () => {
      const before = await app.api.etag('/api/devices/therm-1');
      await devicesUpdate(where({ myId: 'therm-1' }), { deviceUID: 'UID-T1' }).expect(200);
      const after = await app.api.etag('/api/devices/therm-1');
      expect(after).not.toBe(before);
      expect(after).toMatch(/^"[0-9a-f]{24}-1"$/);
    });
  });

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
      expectErrorAt(await accountsUpdate({ all: 'true' }, { deviceIds }), status, path, code);
      expect(await accountsNow()).toEqual(before);
    });

    it('answers 400 naming where when none is given, unless all=true', async () => {
      const before = await accountsNow();
      expectErrorAt(await accountsUpdate({}, { name: 'Everyone' }), 400, 'where', 'required');
      expect(await accountsNow()).toEqual(before);
      await accountsUpdate({ all: 'true' }, { name: 'Everyone' }).expect(200, { count: 3 });
      expect((await accountsNow()).map((account) => account.name)).toEqual(['Everyone', 'Everyone', 'Everyone']);
    });

    it('validates the body as PATCH does', async () => {
      expectErrorAt(await accountsUpdate({ all: 'true' }, { name: '' }), 400, 'name', 'isLength');
      expectErrorAt(await accountsUpdate({ all: 'true' }, { owner: 'x' }), 400, 'owner', 'unknown_property');
    });
  });
});

describe('updateAll in the OpenAPI document', () => {
  const app = appUnderTest();

  it.each([
    ['/api/devices/update', 'updateAllDevices', ['400', '409']],
    ['/api/accounts/update', 'updateAllAccounts', ['400', '422']],
  ])('documents POST %s as %s, its where and all, and its errors', async (path, operationId, statuses) => {
    interface Operation {
      operationId: string;
      parameters: Array<{ name: string; in: string; schema: { type: string } }>;
      requestBody?: unknown;
      responses: Record<string, unknown>;
    }
    const { paths } = (await request(app.t.http).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, Operation>>;
    };
    const operation = paths[path].post;
    expect(operation.operationId).toBe(operationId);
    expect(operation.parameters.map(({ name, in: where, schema }) => [name, where, schema.type])).toEqual([
      ['where', 'query', 'string'],
      ['all', 'query', 'boolean'],
    ]);
    expect(operation.requestBody).toBeDefined();
    for (const status of ['200', ...statuses]) expect(operation.responses[status]).toBeDefined();
    expect(JSON.stringify(operation.responses['400'])).toContain('"code":"required"');
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
