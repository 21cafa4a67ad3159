import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { type ErrorDetail } from '../common/dto/error-response.dto.js';
import { badRequest, notFound, unprocessable } from '../common/errors.js';
import { collectMyIds, replaceMyIds } from '../common/filter/my-id-refs.js';
import { FILTER_LIMITS } from '../common/filter/filter.limits.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page, pageOf } from '../common/filter/page.js';
import { DEVICE_ID_RULE, type DeviceKey, describeDeviceKey, parseDeviceKey } from './device-key.js';
import { type CreateDeviceDto } from './dto/create-device.dto.js';
import { type DeviceDto } from './dto/device.dto.js';
import { type UpdateDeviceDto } from './dto/update-device.dto.js';
import { Device } from './schemas/device.schema.js';

/** Only the stored fields, in schema order; lean reads return exactly this. */
const DEVICE_FIELDS = { _id: 1, myId: 1, deviceUID: 1, createdAt: 1, updatedAt: 1 } as const;

/** Sort keys with `_id` last, so pages are stable when the asked-for keys tie. */
export function stableSort(order: Record<string, 1 | -1> | undefined): Record<string, 1 | -1> {
  return { ...order, _id: order?._id ?? 1 };
}

@Injectable()
export class DevicesService {
  constructor(@InjectModel(Device.name) private readonly devices: Model<Device>) {}

  async create(dto: CreateDeviceDto): Promise<DeviceDto> {
    const created = await this.devices.create({ myId: dto.myId, deviceUID: dto.deviceUID });
    const { _id, myId, deviceUID, createdAt, updatedAt } = created.toObject();
    return { _id, myId, deviceUID, createdAt, updatedAt };
  }

  async findAll(filter: ParsedFilter): Promise<Page<DeviceDto>> {
    const where = await this.resolveRefs(filter.where);
    const limit = filter.limit ?? FILTER_LIMITS.defaultLimit;
    return pageOf(
      (rows) =>
        this.devices
          .find(where, filter.fields ?? DEVICE_FIELDS)
          .sort(stableSort(filter.order))
          .skip(filter.skip)
          .limit(rows)
          .lean<DeviceDto[]>()
          .exec(),
      () => this.devices.countDocuments(where).exec(),
      filter.skip,
      limit,
    );
  }

  async count(where: MongoFilter): Promise<number> {
    return this.devices.countDocuments(await this.resolveRefs(where)).exec();
  }

  /** The first device the filter matches, or 404. */
  async findFirst(filter: ParsedFilter): Promise<DeviceDto> {
    const [device] = await this.devices
      .find(await this.resolveRefs(filter.where), filter.fields ?? DEVICE_FIELDS)
      .sort(stableSort(filter.order))
      .skip(filter.skip)
      .limit(1)
      .lean<DeviceDto[]>()
      .exec();
    if (!device) throw notFound('No device matches the filter');
    return device;
  }

  async findOne(key: DeviceKey, fields?: Record<string, 0 | 1>): Promise<DeviceDto> {
    const device = await this.devices
      .findOne(key, fields ?? DEVICE_FIELDS)
      .lean<DeviceDto>()
      .exec();
    if (!device) throw deviceNotFound(key);
    return device;
  }

  async exists(key: DeviceKey): Promise<boolean> {
    return (await this.devices.exists(key).exec()) !== null;
  }

  /**
   * Devices among `ids` that exist and match `where`, in no particular order unless `order`
   * is given. One query however many ids.
   */
  findByIds(
    ids: readonly Types.ObjectId[],
    query: { where?: MongoFilter; fields?: Record<string, 0 | 1>; order?: Record<string, 1 | -1> } = {},
  ): Promise<DeviceDto[]> {
    if (ids.length === 0) return Promise.resolve([]);
    const filter =
      query.where && Object.keys(query.where).length > 0 ? { $and: [{ _id: { $in: ids } }, query.where] } : { _id: { $in: ids } };
    const find = this.devices.find(filter, query.fields ?? DEVICE_FIELDS);
    if (query.order) find.sort(stableSort(query.order));
    return find.lean<DeviceDto[]>().exec();
  }

  /** Which of `ids` name no device (any more): one read of `_id`s only. */
  async missing(ids: readonly Types.ObjectId[]): Promise<Types.ObjectId[]> {
    if (ids.length === 0) return [];
    const found = await this.devices
      .find({ _id: { $in: ids } }, { _id: 1 })
      .lean()
      .exec();
    const present = new Set(found.map((device) => device._id.toHexString()));
    return ids.filter((id) => !present.has(id.toHexString()));
  }

  /** Counts the devices among `ids` that match `where`. */
  countAmong(ids: readonly Types.ObjectId[], where: MongoFilter): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    return this.devices.countDocuments({ $and: [{ _id: { $in: ids } }, where] }).exec();
  }

  async update(key: DeviceKey, dto: UpdateDeviceDto | CreateDeviceDto): Promise<DeviceDto> {
    const device = await this.devices
      .findOneAndUpdate(key, { $set: dto }, { returnDocument: 'after', runValidators: true, projection: DEVICE_FIELDS })
      .lean<DeviceDto>()
      .exec();
    if (!device) throw deviceNotFound(key);
    return device;
  }

  /** Deletes one device; the schema's middleware pulls its id from every account. */
  async remove(key: DeviceKey): Promise<{ count: number }> {
    // deleteOne, not findOneAndDelete: FerretDB 2.7 + DocumentDB crashes its PostgreSQL backend
    // on the second findAndModify with `remove` in a session (README, Running on FerretDB).
    const { deletedCount } = await this.devices.deleteOne(key).exec();
    if (deletedCount === 0) throw deviceNotFound(key);
    return { count: 1 };
  }

  /** Deletes the devices among `ids`; the schema's middleware pulls them from every account. */
  async removeMany(ids: readonly Types.ObjectId[]): Promise<{ count: number }> {
    if (ids.length === 0) return { count: 0 };
    const result = await this.devices.deleteMany({ _id: { $in: ids } }).exec();
    return { count: result.deletedCount };
  }

  /**
   * The ObjectId of a device named by ObjectId or myId. An ObjectId is returned as it is,
   * without a read: callers that need the device to exist check it in the same operation
   * that needs it. A myId that names no device is a 404.
   */
  async idOf(key: DeviceKey): Promise<Types.ObjectId> {
    if ('_id' in key) return key._id;
    const device = await this.devices.findOne(key, { _id: 1 }).lean().exec();
    if (!device) throw deviceNotFound(key);
    return device._id;
  }

  /** Replaces the myIds a parsed filter names with the devices' ObjectIds (one read, only if any). */
  async resolveRefs<T>(value: T): Promise<T> {
    const myIds = [...collectMyIds(value)];
    if (myIds.length === 0) return value;
    const found = await this.devices
      .find({ myId: { $in: myIds } }, { _id: 1, myId: 1 })
      .lean()
      .exec();
    return replaceMyIds(value, new Map(found.map((device) => [device.myId, device._id])));
  }

  /**
   * Resolves device ids from a request body (each an ObjectId or a myId) to the ObjectIds of
   * existing devices, in the given order, with one read. Malformed ids are a 400; unknown
   * or repeated ones a 422 naming every one of them (DESIGN.md, Accounts).
   */
  async resolveIds(values: readonly unknown[], field: string): Promise<Types.ObjectId[]> {
    const keys = values.map((value) => parseDeviceKey(value));
    const malformed: ErrorDetail[] = keys.flatMap((key, index) =>
      key ? [] : [{ path: `${field}[${index}]`, code: 'invalid_device_id', message: `${field}[${index}] must be ${DEVICE_ID_RULE}` }],
    );
    if (malformed.length > 0) throw badRequest(malformed.map((detail) => detail.message).join('; '), malformed);
    if (keys.length === 0) return [];

    const objectIds = keys.flatMap((key) => (key && '_id' in key ? [key._id] : []));
    const myIds = keys.flatMap((key) => (key && 'myId' in key ? [key.myId] : []));
    const found = await this.devices
      .find({ $or: [{ _id: { $in: objectIds } }, { myId: { $in: myIds } }] }, { _id: 1, myId: 1 })
      .lean()
      .exec();
    const byObjectId = new Map(found.map((device) => [device._id.toHexString(), device._id]));
    const byMyId = new Map(found.map((device) => [device.myId, device._id]));

    const problems: ErrorDetail[] = [];
    const seen = new Set<string>();
    const ids: Types.ObjectId[] = [];
    keys.forEach((key, index) => {
      const path = `${field}[${index}]`;
      const id = '_id' in key! ? byObjectId.get(key._id.toHexString()) : byMyId.get(key!.myId);
      if (!id) {
        problems.push({ path, code: 'unknown_device', message: `${path}: no device ${describeDeviceKey(key!)}` });
      } else if (seen.has(id.toHexString())) {
        problems.push({ path, code: 'duplicate_device', message: `${path}: device ${describeDeviceKey(key!)} is listed more than once` });
      } else {
        seen.add(id.toHexString());
        ids.push(id);
      }
    });
    if (problems.length > 0) throw unprocessable(problems.map((problem) => problem.message).join('; '), problems);
    return ids;
  }
}

export function deviceNotFound(key: DeviceKey) {
  return notFound(`Device ${describeDeviceKey(key)} not found`);
}
