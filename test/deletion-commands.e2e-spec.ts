import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { getConnectionToken } from '@nestjs/mongoose';
import { Test } from '@nestjs/testing';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import { type Connection } from 'mongoose';
import request from 'supertest';
import { AppModule } from '../src/app.module.js';
import { createAdapter } from '../src/app.setup.js';
import { loggingConfig, metricsConfig } from '../src/config/config.module.js';
import { loadConfiguration } from '../src/config/configuration.js';
import { CommandRecorder, type SentCommand, statementsOf } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { createTestApp, type TestApp } from './support/test-app.js';

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

      const logging = { level: 'silent', format: 'json' } as const;
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
        .overrideProvider(loggingConfig.KEY)
        .useValue(logging)
        .overrideProvider(metricsConfig.KEY)
        .useValue({ mode: 'public' })
        .compile();
      // The connection exists once the module is compiled; the sweeper runs when the application starts.
      const recorder = new CommandRecorder(moduleRef.get<Connection>(getConnectionToken()).getClient());
      const app = moduleRef.createNestApplication(createAdapter(loadConfiguration().http, logging), { logger: false });
      try {
        await app.init();
        expect(forbidden(recorder.sent)).toEqual([]);
        const steps = protocolSteps(recorder.sent, id.d1.toHexString());
        expect(steps.pull).toBeGreaterThanOrEqual(0);
        expect(steps.remove).toBeGreaterThan(steps.pull);
        expect(recorder.named('delete', 'devices')).toHaveLength(1);
        expect(await db.collection('devices').countDocuments({ _id: id.d1 })).toBe(0);
        expect(await references()).toEqual(accountsWithout('d1'));
      } finally {
        recorder.stop();
        await app.close();
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
