import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { getConnectionToken } from '@nestjs/mongoose';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import { type Connection } from 'mongoose';
import request from 'supertest';
import { createAccount, createDevice, createDevices, type DeviceBody, storedIds } from './support/bodies.js';
import { CommandRecorder, type SentCommand, statementsOf } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { expectError, json, where } from './support/http.js';
import { appUnderTest, createTestApp, type TestApp } from './support/test-app.js';

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

/**
 * FerretDB 2.7 + DocumentDB crashes its PostgreSQL backend on the second findAndModify with
 * `remove` sent on one connection, and the crash recovery leaves the collection's RUM indexes
 * damaged (README, "Engine defects"). The service therefore deletes devices as mark, pull,
 * remove (src/relations/references-many.ts): M and P are updates, and R is the sweeper's
 * `delete` of marked documents only. These tests watch the commands on the wire, for every way
 * a device is deleted over HTTP and for the sweeper at start-up, on every engine: the defect
 * only crashes FerretDB, but the commands are the same everywhere.
 */

const MAX_DEVICES = 3;
const DEVICES = ['d1', 'd2', 'd3', 'd4', 'd5'] as const;
type MyId = (typeof DEVICES)[number];
/** Several accounts per device: d1 in all three, d2 in two. */
const ACCOUNTS: Record<string, MyId[]> = { a: ['d1', 'd2', 'd3'], b: ['d2', 'd1'], c: ['d4', 'd1'] };

const hex = (value: unknown) => (value instanceof ObjectId ? value.toHexString() : undefined);

/** The ids a filter or `$pull` value names: one ObjectId, or `{ $in: [...] }`. */
function idsIn(value: unknown): string[] {
  if (value instanceof ObjectId) return [value.toHexString()];
  const list = (value as { $in?: unknown[] } | undefined)?.$in;
  return Array.isArray(list) ? list.flatMap((id) => hex(id) ?? []) : [];
}

/** Where in the recorded commands each step of the deletion of `id` (named by it or by `myId`) happened: the command's index, -1 if none. */
function protocolSteps(sent: readonly SentCommand[], id: string, myId?: string): { mark: number; pull: number; remove: number } {
  const names = (query: { _id?: unknown; myId?: unknown }) => idsIn(query._id).includes(id) || (myId !== undefined && query.myId === myId);
  const marks = (command: SentCommand) =>
    command.collection === 'devices' &&
    ((command.name === 'findAndModify' &&
      (command.body.update as { $set?: Record<string, unknown> })?.$set?.deletingSince instanceof Date &&
      names(command.body.query as { _id?: unknown; myId?: unknown })) ||
      (command.name === 'update' &&
        statementsOf(command).some(
          (statement) =>
            (statement.u as { $set?: Record<string, unknown> }).$set?.deletingSince instanceof Date && idsIn(statement.q._id).includes(id),
        )));
  const pulls = (command: SentCommand) =>
    command.name === 'update' &&
    command.collection === 'accounts' &&
    statementsOf(command).some(
      (statement) =>
        statement.multi === true &&
        idsIn(statement.q.deviceIds).includes(id) &&
        idsIn((statement.u as { $pull?: { deviceIds?: unknown } }).$pull?.deviceIds).includes(id),
    );
  const removes = (command: SentCommand) =>
    command.name === 'delete' &&
    command.collection === 'devices' &&
    statementsOf(command).some((statement) => idsIn(statement.q._id).includes(id));
  return { mark: sent.findIndex(marks), pull: sent.findIndex(pulls), remove: sent.findIndex(removes) };
}

/** What must never be on the wire: a findAndModify that removes, and a device `delete` that is not R of the protocol. */
function forbidden(sent: readonly SentCommand[]): SentCommand[] {
  return sent.filter(
    (command) =>
      (command.name === 'findAndModify' && command.body.remove === true) ||
      (command.name === 'delete' && command.collection === 'devices' && !statementsOf(command).every(isSweeperRemoval)),
  );
}

/**
 * R as the sweeper sends it (removePulled, finishAbandoned): marked documents only, by `_id`
 * in batches, every match (limit 0). A live device can never match it.
 */
function isSweeperRemoval(statement: Record<string, unknown> & { q: Record<string, unknown> }): boolean {
  const { _id, deletingSince, ...rest } = statement.q;
  return (
    Object.keys(rest).length === 0 &&
    idsIn(_id).length > 0 &&
    Object.keys(_id as object).join() === '$in' &&
    JSON.stringify(deletingSince) === JSON.stringify({ $exists: true }) &&
    statement.limit === 0
  );
}

describe('Device deletion on the wire (FerretDB defect: a second findAndModify with remove crashes the PostgreSQL backend)', () => {
  /** A client of the test's own for seeding and inspecting, so the recorder sees only the service's commands. */
  let inspector: MongoClient;
  let db: Db;
  let id: Record<MyId, ObjectId>;

  beforeAll(async () => {
    inspector = await MongoClient.connect(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 });
    db = inspector.db();
  });
  afterAll(() => inspector.close());

  async function seed(): Promise<void> {
    await Promise.all([db.collection('devices').deleteMany({}), db.collection('accounts').deleteMany({})]);
    id = Object.fromEntries(DEVICES.map((myId) => [myId, new ObjectId()])) as Record<MyId, ObjectId>;
    const now = new Date();
    await db
      .collection('devices')
      .insertMany(DEVICES.map((myId) => ({ _id: id[myId], myId, deviceUID: `uid-${myId}`, rev: 0, createdAt: now, updatedAt: now })));
    await db.collection('accounts').insertMany(
      Object.entries(ACCOUNTS).map(([name, myIds]) => ({
        name,
        deviceIds: myIds.map((myId) => id[myId]),
        rev: 0,
        createdAt: now,
        updatedAt: now,
      })),
    );
  }

  async function references(): Promise<Record<string, string[]>> {
    const byId = new Map(Object.entries(id).map(([myId, objectId]) => [objectId.toHexString(), myId]));
    const accounts = await db.collection<{ name: string; deviceIds: ObjectId[] }>('accounts').find().toArray();
    return Object.fromEntries(
      accounts.map((account) => [account.name, account.deviceIds.map((ref) => byId.get(ref.toHexString()) ?? `dangling:${ref}`)]),
    );
  }

  const accountsWithout = (...gone: MyId[]) =>
    Object.fromEntries(Object.entries(ACCOUNTS).map(([name, myIds]) => [name, myIds.filter((myId) => !gone.includes(myId))]));

  describe('the sweeper at start-up', () => {
    it('finishes a deletion a killed process left after M with an updateMany $pull and a delete of marked documents only', async () => {
      await seed();
      // What a process killed between M and P leaves: d1 marked (its unique values moved
      // aside), its id still in every account that referenced it.
      await db
        .collection('devices')
        .updateOne(
          { _id: id.d1 },
          { $set: { deletingSince: new Date(Date.now() - 60_000), myId: new ObjectId(), deviceUID: new ObjectId() } },
        );

      // The sweeper runs when the application starts: the recorder listens from before that.
      let recorder!: CommandRecorder;
      const t = await createTestApp({
        config: { metrics: { mode: 'public' } },
        beforeInit: (app) => {
          recorder = new CommandRecorder(app.get<Connection>(getConnectionToken()).getClient());
        },
      });
      try {
        expect(forbidden(recorder.sent)).toEqual([]);
        const steps = protocolSteps(recorder.sent, id.d1.toHexString());
        expect(steps.pull).toBeGreaterThanOrEqual(0);
        expect(steps.remove).toBeGreaterThan(steps.pull);
        expect(recorder.named('delete', 'devices')).toHaveLength(1);
        expect(await db.collection('devices').countDocuments({ _id: id.d1 })).toBe(0);
        expect(await references()).toEqual(accountsWithout('d1'));
      } finally {
        recorder.stop();
        await t.close();
      }
    });
  });

  describe('over HTTP', () => {
    let t: TestApp;
    let recorder: CommandRecorder;

    beforeAll(async () => {
      // Metrics on: the service's client then monitors its commands, which the recorder reads.
      t = await createTestApp({ config: { metrics: { mode: 'public' }, relation: { maxDevicesPerAccount: MAX_DEVICES } } });
      recorder = new CommandRecorder(t.connection.getClient());
    });
    afterAll(async () => {
      recorder.stop();
      await t.close();
    });
    beforeEach(async () => {
      await seed();
      recorder.clear();
    });

    /** Waits for the sweeper's R of `gone`, then checks the commands of the whole deletion. */
    async function expectDeletedByProtocol(gone: MyId[]): Promise<void> {
      expect(
        await eventually(async () => (await db.collection('devices').countDocuments({ _id: { $in: gone.map((myId) => id[myId]) } })) === 0),
      ).toBe(true);
      expect(forbidden(recorder.sent)).toEqual([]);
      for (const myId of gone) {
        const steps = protocolSteps(recorder.sent, id[myId].toHexString(), myId);
        expect({ myId, markBeforePull: steps.mark >= 0 && steps.mark < steps.pull, pullBeforeRemove: steps.pull < steps.remove }).toEqual({
          myId,
          markBeforePull: true,
          pullBeforeRemove: true,
        });
      }
      expect(await references()).toEqual(accountsWithout(...gone));
      expect(await db.collection('devices').countDocuments()).toBe(DEVICES.length - gone.length);
    }

    it('DELETE /api/devices/:id by ObjectId sends M, P and R, and no findAndModify that removes', async () => {
      await request(t.http).delete(`/api/devices/${id.d1.toHexString()}`).expect(200, { count: 1 });
      await expectDeletedByProtocol(['d1']);
    });

    it('DELETE /api/devices/:id by myId sends M, P and R, and no findAndModify that removes', async () => {
      await request(t.http).delete('/api/devices/d2').expect(200, { count: 1 });
      await expectDeletedByProtocol(['d2']);
    });

    it('DELETE /api/devices/:id of unknown devices, twice on one connection (the crashing sequence), sends no findAndModify that removes', async () => {
      await request(t.http).delete('/api/devices/ghost-1').expect(404);
      await request(t.http).delete(`/api/devices/${new ObjectId().toHexString()}`).expect(404);
      await request(t.http).delete('/api/devices/d3').expect(200);
      await expectDeletedByProtocol(['d3']);
      // The two unknown ones were a mark that matched nothing, as a findAndModify that updates.
      expect(recorder.named('findAndModify', 'devices').map((command) => command.body.remove ?? false)).toEqual([false, false, false]);
    });

    it('DELETE /api/accounts/:id/devices/:fk sends M, P and R, and no findAndModify that removes', async () => {
      const account = await db.collection('accounts').findOne({ name: 'c' });
      await request(t.http).delete(`/api/accounts/${account!._id.toHexString()}/devices/d4`).expect(200, { count: 1 });
      await expectDeletedByProtocol(['d4']);
    });

    it('DELETE /api/accounts/:id/devices (all of its devices) marks them in one bulk update, pulls them, and R removes them', async () => {
      const account = await db.collection('accounts').findOne({ name: 'a' });
      await request(t.http).delete(`/api/accounts/${account!._id.toHexString()}/devices`).expect(200, { count: 3 });
      await expectDeletedByProtocol(['d1', 'd2', 'd3']);
      expect(recorder.named('update', 'devices')).toHaveLength(1);
    });

    it('POST /api/accounts/:id/devices over the limit deletes the device it created again the same way (422)', async () => {
      const account = await db.collection('accounts').findOne({ name: 'a' });
      const res = await request(t.http)
        .post(`/api/accounts/${account!._id.toHexString()}/devices`)
        .send({ myId: 'd6', deviceUID: 'uid-d6' });
      expect(res.status).toBe(422);
      const created = recorder
        .named('insert', 'devices')
        .flatMap((command) => (command.body.documents as Array<{ _id: ObjectId }>).map((doc) => doc._id));
      expect(created).toHaveLength(1);
      expect(await eventually(async () => (await db.collection('devices').countDocuments({ _id: created[0] })) === 0)).toBe(true);
      expect(forbidden(recorder.sent)).toEqual([]);
      const steps = protocolSteps(recorder.sent, created[0].toHexString());
      expect(steps.mark).toBeGreaterThanOrEqual(0);
      expect(steps.remove).toBeGreaterThan(steps.mark);
      expect(await references()).toEqual(ACCOUNTS);
    });

    it('DELETE /api/accounts/:id deletes the account with a delete on accounts and touches no device', async () => {
      const account = await db.collection('accounts').findOne({ name: 'b' });
      await request(t.http).delete(`/api/accounts/${account!._id.toHexString()}`).expect(200, { count: 1 });
      expect(forbidden(recorder.sent)).toEqual([]);
      expect(recorder.named('delete', 'accounts').map((command) => statementsOf(command).map((statement) => hex(statement.q._id)))).toEqual(
        [[account!._id.toHexString()]],
      );
      expect(recorder.sent.filter((command) => command.collection === 'devices' && command.name !== 'find')).toEqual([]);
      expect(await db.collection('devices').countDocuments()).toBe(DEVICES.length);
    });
  });
});

describe('updateAll', () => {
  const app = appUnderTest();

  const devicesUpdate = (query: object | string, body: object) => request(app.t.http).post('/api/devices/update').query(query).send(body);
  /** Every device as stored, by myId: what a refused request must leave as it was. */
  const devicesNow = async () =>
    Object.fromEntries(
      (
        await app.t.devices
          .find({}, { rev: 1, myId: 1, deviceUID: 1, updatedAt: 1 })
          .lean<Array<{ myId: string; deviceUID: string; rev: number }>>()
      ).map((d) => [d.myId, d]),
    );

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
      expectError(await devicesUpdate(where({ myId: { like: '^therm' } }), body), 409, { including: [{ path: field, code: 'duplicate' }] });
      expectError(await devicesUpdate({ all: 'true' }, body), 409, { including: [{ path: field, code: 'duplicate' }] });
      expect(await devicesNow()).toEqual(before);
    });

    it("answers 409 naming the field when the new value is another device's, and changes nothing", async () => {
      const before = await devicesNow();
      expectError(await devicesUpdate(where({ myId: 'lamp-1' }), { myId: 'therm-1' }), 409, {
        including: [{ path: 'myId', code: 'duplicate' }],
      });
      expectError(await devicesUpdate(where({ myId: 'lamp-1' }), { deviceUID: 'uid-therm-2' }), 409, {
        including: [{ path: 'deviceUID', code: 'duplicate' }],
      });
      expect(await devicesNow()).toEqual(before);
    });

    it.each([
      ['missing', {}],
      ['empty JSON', where({})],
      ['an empty string', { where: '' }],
      ['given with all=false', { ...where({}), all: 'false' }],
    ])('answers 400 naming where when it is %s, and changes nothing', async (_case, query) => {
      const before = await devicesNow();
      expectError(await devicesUpdate(query, {}), 400, { including: [{ path: 'where', code: 'required' }] });
      expect(await devicesNow()).toEqual(before);
    });

    it('changes every device with all=true and no where', async () => {
      const before = await devicesNow();
      await devicesUpdate({ all: 'true' }, {}).expect(200, { count: 3 });
      const after = await devicesNow();
      for (const myId of Object.keys(before)) expect(after[myId].rev).toBe(before[myId].rev + 1);
    });

    it.each(['yes', '1', 'TRUE'])('answers 400 naming all for all=%s', async (all) => {
      expectError(await devicesUpdate({ all }, {}), 400, { including: [{ path: 'all', code: 'invalid_boolean' }] });
    });

    it('answers 400 naming the path for a where the filter language refuses', async () => {
      expectError(await devicesUpdate(where({ colour: 'red' }), {}), 400, { including: [{ path: 'where.colour', code: 'unknown_field' }] });
      expectError(await devicesUpdate({ where: '{not json' }, {}), 400, { including: [{ path: 'where', code: 'invalid_json' }] });
    });

    it('validates the body as PATCH does, and changes nothing', async () => {
      const before = await devicesNow();
      expectError(await devicesUpdate(where({ myId: 'lamp-1' }), { colour: 'red' }), 400, {
        including: [{ path: 'colour', code: 'unknown_property' }],
      });
      expectError(await devicesUpdate(where({ myId: 'lamp-1' }), { myId: 'count' }), 400, {
        including: [{ path: 'myId', code: 'isMyId' }],
      });
      expectError(await devicesUpdate(where({ myId: 'lamp-1' }), { deviceUID: null }), 400, {
        including: [{ path: 'deviceUID', code: 'isString' }],
      });
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
