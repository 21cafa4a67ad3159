import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { type Types } from 'mongoose';
import { createTestApp, type TestApp } from '../support/test-app.js';

const MY_IDS = ['d1', 'd2', 'd3', 'd4', 'd5'] as const;
type MyId = (typeof MY_IDS)[number];

/** Which devices each account references, by myId, in order. */
const INITIAL: Record<string, MyId[]> = {
  all: ['d1', 'd2', 'd3', 'd4', 'd5'],
  reversed: ['d5', 'd3', 'd1'],
  evens: ['d2', 'd4'],
  none: [],
};

describe('Device schema cleanup middleware', () => {
  let t: TestApp;
  let id: Record<MyId, Types.ObjectId>;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());
  beforeEach(async () => {
    await t.clear();
    const devices = await t.devices.create(MY_IDS.map((myId) => ({ myId, deviceUID: `uid-${myId}` })));
    id = Object.fromEntries(devices.map((device) => [device.myId, device._id])) as Record<MyId, Types.ObjectId>;
    await t.accounts.create(Object.entries(INITIAL).map(([name, myIds]) => ({ name, deviceIds: myIds.map((myId) => id[myId]) })));
  });

  /** Every account's references as myIds, in stored order, read straight from the collection. */
  async function references(): Promise<Record<string, string[]>> {
    const byId = new Map(Object.entries(id).map(([myId, objectId]) => [objectId.toHexString(), myId]));
    const accounts = await t.accounts.find().lean();
    return Object.fromEntries(
      accounts.map((account) => [account.name, account.deviceIds.map((ref) => byId.get(ref.toHexString()) ?? `dangling:${ref}`)]),
    );
  }

  const without = (...gone: MyId[]) =>
    Object.fromEntries(Object.entries(INITIAL).map(([name, myIds]) => [name, myIds.filter((myId) => !gone.includes(myId))]));

  it.each<[string, () => Promise<unknown>]>([
    ['Model.findOneAndDelete(filter)', () => t.devices.findOneAndDelete({ myId: 'd3' }).exec()],
    ['Model.findByIdAndDelete(id)', () => t.devices.findByIdAndDelete(id.d3).exec()],
    ['Model.deleteOne(filter by myId)', () => t.devices.deleteOne({ myId: 'd3' }).exec()],
    ['Model.deleteOne(filter by _id)', () => t.devices.deleteOne({ _id: id.d3 }).exec()],
    ['document.deleteOne()', async () => (await t.devices.findOne({ myId: 'd3' }).orFail().exec()).deleteOne()],
  ])('%s removes the id from every account, keeping the other ids in order', async (_case, remove) => {
    await remove();
    expect(await t.devices.exists({ _id: id.d3 })).toBeNull();
    expect(await references()).toEqual(without('d3'));
    expect(await t.accounts.countDocuments({ deviceIds: id.d3 })).toBe(0);
    expect(await t.devices.countDocuments()).toBe(4);
  });

  it('Model.deleteMany(filter) removes every deleted id from every account, keeping the rest in order', async () => {
    const result = await t.devices.deleteMany({ myId: { $in: ['d1', 'd3', 'd5'] } }).exec();
    expect(result.deletedCount).toBe(3);
    expect(await references()).toEqual(without('d1', 'd3', 'd5'));
    expect(await t.accounts.countDocuments({ deviceIds: { $in: [id.d1, id.d3, id.d5] } })).toBe(0);
  });

  it('Model.deleteMany({}) empties every account', async () => {
    await t.devices.deleteMany({}).exec();
    expect(await references()).toEqual({ all: [], reversed: [], evens: [], none: [] });
  });

  it('Model.deleteOne(filter) matching several devices pulls only the one it deleted', async () => {
    const result = await t.devices.deleteOne({ myId: { $in: ['d2', 'd4'] } }).exec();
    expect(result.deletedCount).toBe(1);
    const survivor = (await t.devices.find({ myId: { $in: ['d2', 'd4'] } }).lean()).map((device) => device.myId as MyId);
    expect(survivor).toHaveLength(1);
    const gone = survivor[0] === 'd2' ? 'd4' : 'd2';
    expect(await references()).toEqual(without(gone));
  });

  it.each<[string, () => Promise<unknown>]>([
    ['Model.findOneAndDelete', () => t.devices.findOneAndDelete({ myId: 'ghost' }).exec()],
    ['Model.deleteOne', () => t.devices.deleteOne({ myId: 'ghost' }).exec()],
    ['Model.deleteMany', () => t.devices.deleteMany({ myId: { $in: ['ghost', 'phantom'] } }).exec()],
  ])('%s matching no device changes no account', async (_case, remove) => {
    await remove();
    expect(await references()).toEqual(INITIAL);
    expect(await t.devices.countDocuments()).toBe(5);
  });

  it('leaves every other field of the accounts as it was', async () => {
    const before = await t.accounts.find({}, { name: 1, createdAt: 1 }).sort({ name: 1 }).lean();
    await t.devices.deleteMany({ myId: { $in: ['d2', 'd5'] } }).exec();
    const after = await t.accounts.find({}, { name: 1, createdAt: 1 }).sort({ name: 1 }).lean();
    expect(after).toEqual(before);
  });
});
