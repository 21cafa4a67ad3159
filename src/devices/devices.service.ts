import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, Types } from 'mongoose';
import { type ErrorDetail } from '../common/dto/error-response.dto.js';
import { badRequest, notFound, unprocessable } from '../common/errors.js';
import { DEVICE_ID_RULE, type DeviceKey, describeDeviceKey, parseDeviceKey } from './device-key.js';
import { type CreateDeviceDto } from './dto/create-device.dto.js';
import { type UpdateDeviceDto } from './dto/update-device.dto.js';
import { Device } from './schemas/device.schema.js';

/** Only the stored fields, in schema order; lean reads return exactly this. */
const DEVICE_FIELDS = { _id: 1, myId: 1, deviceUID: 1, createdAt: 1, updatedAt: 1 } as const;

export interface Page<T> {
  items: T[];
  total: number;
}

@Injectable()
export class DevicesService {
  constructor(@InjectModel(Device.name) private readonly devices: Model<Device>) {}

  async create(dto: CreateDeviceDto): Promise<Device> {
    const created = await this.devices.create({ myId: dto.myId, deviceUID: dto.deviceUID });
    return created.toObject();
  }

  async findAll(page: { skip: number; limit: number }): Promise<Page<Device>> {
    const [items, total] = await Promise.all([
      this.devices.find({}, DEVICE_FIELDS).sort({ _id: 1 }).skip(page.skip).limit(page.limit).lean().exec(),
      this.devices.countDocuments().exec(),
    ]);
    return { items, total };
  }

  async findOne(key: DeviceKey): Promise<Device> {
    const device = await this.devices.findOne(key, DEVICE_FIELDS).lean().exec();
    if (!device) throw deviceNotFound(key);
    return device;
  }

  /** The devices among `ids` that exist, in no particular order. */
  findByIds(ids: readonly Types.ObjectId[]): Promise<Device[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.devices.find({ _id: { $in: ids } }, DEVICE_FIELDS).lean().exec();
  }

  /** Which of `ids` name no device (any more): one read of `_id`s only. */
  async missing(ids: readonly Types.ObjectId[]): Promise<Types.ObjectId[]> {
    if (ids.length === 0) return [];
    const found = await this.devices.find({ _id: { $in: ids } }, { _id: 1 }).lean().exec();
    const present = new Set(found.map((device) => device._id.toHexString()));
    return ids.filter((id) => !present.has(id.toHexString()));
  }

  async update(key: DeviceKey, dto: UpdateDeviceDto | CreateDeviceDto): Promise<Device> {
    const device = await this.devices
      .findOneAndUpdate(key, { $set: dto }, { returnDocument: 'after', runValidators: true, projection: DEVICE_FIELDS })
      .lean()
      .exec();
    if (!device) throw deviceNotFound(key);
    return device;
  }

  /** Deletes one device; the schema's middleware pulls its id from every account. */
  async remove(key: DeviceKey): Promise<{ count: number }> {
    const deleted = await this.devices.findOneAndDelete(key, { projection: { _id: 1 } }).lean().exec();
    if (!deleted) throw deviceNotFound(key);
    return { count: 1 };
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
