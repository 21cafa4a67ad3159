import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model } from 'mongoose';
import { notFound } from '../common/errors.js';
import { FilteredQuery } from '../common/filter/filtered-query.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { isIdKey, resolveAlternateKeys } from '../relations/keys.js';
import { type DeviceKey, describeDeviceKey } from './device-key.js';
import { DEVICE } from './device.shape.js';
import { type CreateDeviceDto } from './dto/create-device.dto.js';
import { type DeviceDto } from './dto/device.dto.js';
import { type UpdateDeviceDto } from './dto/update-device.dto.js';
import { Device } from './schemas/device.schema.js';

/** Devices: plain CRUD. What deleting one does to the accounts referencing it is the schema's (device.schema.ts). */
@Injectable()
export class DevicesService {
  private readonly query: FilteredQuery<DeviceDto>;

  constructor(@InjectModel(Device.name) private readonly devices: Model<Device>) {
    this.query = new FilteredQuery(devices, DEVICE.projection, (where) => resolveAlternateKeys(devices, 'myId', where));
  }

  async create(dto: CreateDeviceDto): Promise<DeviceDto> {
    const created = await this.devices.create({ myId: dto.myId, deviceUID: dto.deviceUID });
    const { _id, myId, deviceUID, createdAt, updatedAt } = created.toObject();
    return { _id, myId, deviceUID, createdAt, updatedAt };
  }

  findAll(filter: ParsedFilter): Promise<Page<DeviceDto>> {
    return this.query.page(filter);
  }

  count(where: MongoFilter): Promise<number> {
    return this.query.count(where);
  }

  /** The first device the filter matches, or 404. */
  async findFirst(filter: ParsedFilter): Promise<DeviceDto> {
    const device = await this.query.first(filter);
    if (!device) throw notFound('No device matches the filter');
    return device;
  }

  async findOne(key: DeviceKey, fields?: Record<string, 0 | 1>): Promise<DeviceDto> {
    const device = await this.devices
      .findOne(key, fields ?? DEVICE.projection)
      .lean<DeviceDto>()
      .exec();
    if (!device) throw deviceNotFound(key);
    return device;
  }

  async exists(key: DeviceKey): Promise<boolean> {
    return (await this.devices.exists(key).exec()) !== null;
  }

  /**
   * Changes fields by the device's ObjectId, then reads it back. Not findOneAndUpdate: on
   * FerretDB a findAndModify that breaks a unique index fails without naming the index, and
   * the 409 must name the field (README, Running on FerretDB).
   */
  async update(key: DeviceKey, dto: UpdateDeviceDto | CreateDeviceDto): Promise<DeviceDto> {
    const _id = isIdKey(key) ? key._id : (await this.findOne(key, { _id: 1 }))._id;
    const { matchedCount } = await this.devices.updateOne({ _id }, { $set: dto }, { runValidators: true }).exec();
    if (matchedCount === 0) throw deviceNotFound(key);
    return this.findOne({ _id });
  }

  /** Deletes one device; the schema's deletion pulls its id from every account. */
  async remove(key: DeviceKey): Promise<{ count: number }> {
    const { deletedCount } = await this.devices.deleteOne(key).exec();
    if (deletedCount === 0) throw deviceNotFound(key);
    return { count: 1 };
  }
}

export function deviceNotFound(key: DeviceKey) {
  return notFound(`Device ${describeDeviceKey(key)} not found`);
}
