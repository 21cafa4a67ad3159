/**
 * The fewest queries that answer each benchmarked route, written by hand against the raw
 * driver: what the limit server runs behind HTTP, and what the engine ceiling runs without it.
 */
import { type Db, type Document, type ObjectId } from 'mongodb';

function inOrder(ids: readonly ObjectId[], found: readonly Document[]): Document[] {
  const byId = new Map(found.map((device) => [device._id.toHexString(), device]));
  return ids.flatMap((id) => byId.get(id.toHexString()) ?? []);
}

export type LimitQueries = ReturnType<typeof limitQueries>;

/** The service's default (MAX_DEVICES_PER_ACCOUNT). */
const MAX_DEVICES_PER_ACCOUNT = 10_000;

interface AccountDocument {
  _id: ObjectId;
  name: string;
  deviceIds: ObjectId[];
  createdAt: Date;
  updatedAt: Date;
}

export function limitQueries(db: Db) {
  const accounts = db.collection<AccountDocument>('accounts');
  const devices = db.collection('devices');
  return {
    async account(id: ObjectId, includeDevices: boolean) {
      const account = await accounts.findOne({ _id: id });
      if (!account || !includeDevices) return account;
      const found = await devices.find({ _id: { $in: account.deviceIds } }).toArray();
      return { ...account, devices: inOrder(account.deviceIds, found) };
    },
    async devicePage(id: ObjectId, skip: number, limit: number) {
      const [slice] = await accounts
        .aggregate<{ total: number; ids: ObjectId[] }>([
          { $match: { _id: id } },
          { $project: { _id: 0, total: { $size: '$deviceIds' }, ids: { $slice: ['$deviceIds', skip, limit] } } },
        ])
        .toArray();
      if (!slice) return null;
      const found = await devices.find({ _id: { $in: slice.ids } }).toArray();
      return { items: inOrder(slice.ids, found), total: slice.total };
    },
    async link(id: ObjectId, deviceId: ObjectId) {
      const device = await devices.findOne({ _id: deviceId });
      if (!device) return null;
      // The relation's size limit (DESIGN.md) is part of the route's contract, so the limit
      // enforces it as the service does: in the update's filter, atomically. It leaves out the
      // service's re-check against a concurrent delete of the device, one round trip fewer.
      const { matchedCount } = await accounts.updateOne(
        { _id: id, $or: [{ deviceIds: deviceId }, { [`deviceIds.${MAX_DEVICES_PER_ACCOUNT - 1}`]: { $exists: false } }] },
        { $addToSet: { deviceIds: deviceId }, $set: { updatedAt: new Date() } },
      );
      return matchedCount ? device : null;
    },
    async unlink(id: ObjectId, deviceId: ObjectId) {
      const { matchedCount } = await accounts.updateOne(
        { _id: id, deviceIds: deviceId },
        { $pull: { deviceIds: deviceId }, $set: { updatedAt: new Date() } },
      );
      return matchedCount > 0;
    },
    async deleteDevice(id: ObjectId) {
      if (!(await devices.findOneAndDelete({ _id: id }, { projection: { _id: 1 } }))) return false;
      await accounts.updateMany({ deviceIds: id }, { $pull: { deviceIds: id }, $set: { updatedAt: new Date() } });
      return true;
    },
    async accountsOf(deviceId: ObjectId, skip = 0, limit = 100) {
      // One row more than the page: when it does not come, the page itself gives the total,
      // and only a longer list needs countDocuments.
      const rows = await accounts
        .find({ deviceIds: deviceId })
        .sort({ _id: 1 })
        .skip(skip)
        .limit(limit + 1)
        .toArray();
      const known = rows.length <= limit && (rows.length > 0 || skip === 0);
      const total = known ? skip + rows.length : await accounts.countDocuments({ deviceIds: deviceId });
      // Only an empty answer needs to know whether the device exists (404 or []).
      if (total === 0 && !(await devices.findOne({ _id: deviceId }, { projection: { _id: 1 } }))) return null;
      return { items: rows.slice(0, limit), total };
    },
  };
}
