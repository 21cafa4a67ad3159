import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection, type Model, Types } from 'mongoose';
import { ACCOUNT_DEVICES } from '../../src/accounts/account-devices.relation.js';
import { Account, AccountSchema } from '../../src/accounts/schemas/account.schema.js';
import { Device, DeviceSchema } from '../../src/devices/schemas/device.schema.js';
import { pullEverywhere, ReferencesMany } from '../../src/relations/references-many.js';
import { eventually } from '../support/eventually.js';
import { analyze, postgresUrlOf, scanCounts } from '../support/postgres.js';

/**
 * The relation's hot queries are index lookups: the reverse lookup and the deletion's cleanup
 * by one device id (the multikey `deviceIds_1`), and lookups by the unique `myId` and
 * `deviceUID`. Where the engine has secondary indexes, its plan must name them; mongo-java-server
 * accepts non-unique indexes and ignores them (README), so there the indexes are checked as
 * declared. The cleanup's updateMany is checked in PostgreSQL's statistics on FerretDB, which
 * refuses `explain` of an update (code 238, NotImplemented).
 */

const engine = process.env.TEST_DATABASE_ENGINE;
const SECONDARY_INDEXES = engine !== 'mongo-java-server';
const DEVICES = 3_000;
const ACCOUNTS = 3_000;
const IDS_PER_ACCOUNT = 5;

/** Every index a plan names: MongoDB's `indexName`, PostgreSQL's `Index Name` (FerretDB). */
function indexesInPlan(plan: unknown): string[] {
  if (Array.isArray(plan)) return plan.flatMap(indexesInPlan);
  if (typeof plan !== 'object' || plan === null) return [];
  return Object.entries(plan).flatMap(([key, value]) =>
    (key === 'indexName' || key === 'Index Name') && typeof value === 'string' ? [value] : indexesInPlan(value),
  );
}

describe('Indexes of the relation', () => {
  let connection: Connection;
  let devices: Model<Device>;
  let accounts: Model<Account>;
  let relation: ReferencesMany;
  let deviceIds: Types.ObjectId[];

  beforeAll(async () => {
    connection = await mongoose.createConnection(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 }).asPromise();
    devices = connection.model<Device>(Device.name, DeviceSchema);
    accounts = connection.model<Account>(Account.name, AccountSchema);
    relation = new ReferencesMany(ACCOUNT_DEVICES, connection, 10_000);
    await Promise.all([devices.collection.deleteMany({}), accounts.collection.deleteMany({})]);
    await Promise.all([devices.init(), accounts.init()]);
    deviceIds = Array.from({ length: DEVICES }, () => new Types.ObjectId());
    await devices.collection.insertMany(deviceIds.map((_id, i) => ({ _id, myId: `idx-${i}`, deviceUID: `UID-idx-${i}` })));
    await accounts.collection.insertMany(
      Array.from({ length: ACCOUNTS }, (_, i) => ({
        name: `idx-${i}`,
        deviceIds: Array.from({ length: IDS_PER_ACCOUNT }, (_, k) => deviceIds[(i * IDS_PER_ACCOUNT + k) % DEVICES]),
      })),
    );
    // The plans below are PostgreSQL's, chosen by its statistics: gathered now rather than
    // whenever autovacuum gets to the fresh tables.
    if (SECONDARY_INDEXES) {
      const postgres = await postgresUrlOf(process.env.MONGODB_URI!);
      for (const collection of ['accounts', 'devices']) analyze(postgres, connection.db!.databaseName, collection);
    }
  }, 120_000);
  afterAll(() => connection.close());

  const listed = async (collection: mongoose.Collection) =>
    (await collection.listIndexes().toArray()).map(({ name, key, unique, sparse }) => ({
      name,
      key,
      unique: unique === true,
      sparse: sparse === true,
    }));

  it('declares deviceIds_1 on accounts, unique myId_1 and deviceUID_1 and a sparse deletingSince_1 on devices', async () => {
    expect(await listed(accounts.collection)).toEqual(
      expect.arrayContaining([{ name: 'deviceIds_1', key: { deviceIds: 1 }, unique: false, sparse: false }]),
    );
    expect(await listed(devices.collection)).toEqual(
      expect.arrayContaining([
        { name: 'myId_1', key: { myId: 1 }, unique: true, sparse: false },
        { name: 'deviceUID_1', key: { deviceUID: 1 }, unique: true, sparse: false },
        { name: 'deletingSince_1', key: { deletingSince: 1 }, unique: false, sparse: true },
      ]),
    );
  });

  /** The index `name` serves `filter` on `collection`: named in the plan, or (without secondary indexes) declared on its field. */
  async function expectServedBy(collection: mongoose.Collection, filter: Record<string, unknown>, name: string): Promise<void> {
    if (!SECONDARY_INDEXES) {
      const field = Object.keys(filter)[0];
      expect(await listed(collection)).toContainEqual(expect.objectContaining({ name, key: { [field]: 1 } }));
      return;
    }
    const plan = await collection.find(filter).explain('queryPlanner');
    expect(indexesInPlan(plan)).toContain(name);
  }

  it('answers the reverse lookup (the accounts naming a device) from deviceIds_1', async () => {
    await expectServedBy(accounts.collection, await relation.referencing({ _id: deviceIds[7] }), 'deviceIds_1');
  });

  it('answers the cleanup’s lookup of a batch of deleted ids ({ deviceIds: { $in } }) from deviceIds_1', async () => {
    // A batch as the cleanup sends it (IN_BATCH ids), of devices few accounts hold, as deleted
    // devices are: here 20 held by five accounts each and 180 by none. (The first 200 devices
    // would match a third of this fixture's accounts, where a cost-based planner rightly scans.)
    const batch = [...deviceIds.slice(0, 20), ...Array.from({ length: 180 }, () => new Types.ObjectId())];
    await expectServedBy(accounts.collection, { deviceIds: { $in: batch } }, 'deviceIds_1');
  });

  it.each([
    ['a myId', { myId: 'idx-42' }, 'myId_1'],
    ['several myIds ({ $in }, as a list of keys is resolved)', { myId: { $in: ['idx-1', 'idx-2', 'idx-3'] } }, 'myId_1'],
    ['a deviceUID', { deviceUID: 'UID-idx-42' }, 'deviceUID_1'],
  ])('finds a device by %s from its unique index', async (_case, filter, name) => {
    await expectServedBy(devices.collection, filter, name);
  });

  it('runs the deletion’s cleanup (updateMany $pull of a device id from every account) on deviceIds_1, not a scan', async () => {
    // Device j is the k-th id of account (j + 3000 m - k) / 5 for each m = 0…4 that makes it whole: five accounts.
    const j = 11;
    const gone = deviceIds[j];
    const holders = Array.from({ length: IDS_PER_ACCOUNT }, (_, m) => j + m * DEVICES).map(
      (slot) => `idx-${Math.floor(slot / IDS_PER_ACCOUNT)}`,
    );

    if (!SECONDARY_INDEXES) {
      expect(await listed(accounts.collection)).toContainEqual(expect.objectContaining({ name: 'deviceIds_1', key: { deviceIds: 1 } }));
      await pullEverywhere(devices, [gone]);
    } else if (engine === 'ferretdb') {
      const postgres = await postgresUrlOf(process.env.MONGODB_URI!);
      const read = () => scanCounts(postgres, connection.db!.databaseName, 'accounts', 'deviceIds_1');
      // PostgreSQL publishes an idle backend's counts within about ten seconds: those of the
      // statements before this one are in once that has passed.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      const before = read();
      await pullEverywhere(devices, [gone]);
      let after = before;
      await eventually(() => (after = read()).indexScans > before.indexScans, { timeoutMs: 30_000, everyMs: 500 });
      expect({ indexScans: after.indexScans > before.indexScans, tableScans: after.tableScans - before.tableScans }).toEqual({
        indexScans: true,
        tableScans: 0,
      });
    } else {
      const explained = await connection.db!.command({
        explain: { update: 'accounts', updates: [{ q: { deviceIds: gone }, u: { $pull: { deviceIds: gone } }, multi: true }] },
        verbosity: 'queryPlanner',
      });
      expect(indexesInPlan(explained)).toContain('deviceIds_1');
      await pullEverywhere(devices, [gone]);
    }
    const pulledFrom = await accounts.find({ name: { $in: holders } }, { name: 1, deviceIds: 1 }).lean();
    expect(
      pulledFrom.map((account) => ({
        name: account.name,
        ids: account.deviceIds.length,
        holds: account.deviceIds.some((id) => id.equals(gone)),
      })),
    ).toEqual(expect.arrayContaining(holders.map((name) => ({ name, ids: IDS_PER_ACCOUNT - 1, holds: false }))));
    expect(await accounts.countDocuments({ deviceIds: gone })).toBe(0);
  }, 90_000);
});
