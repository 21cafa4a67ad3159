import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import request from 'supertest';
import { CommandRecorder, type SentCommand } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { createTestApp, type TestApp } from './support/test-app.js';

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
