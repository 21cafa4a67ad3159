import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model } from 'mongoose';
import { conflict, notFound, preconditionFailed } from '../common/errors.js';
import { FilteredQuery } from '../common/filter/filtered-query.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type EntityTagCondition, versionCondition } from '../common/http/entity-tags.js';
import { REVISION } from '../common/schema/revision.plugin.js';
import { insertOne } from '../common/schema/time-limit.js';
import { isIdKey, resolveAlternateKeys } from '../relations/keys.js';
import { uniquePaths } from '../relations/references-many.js';
import { type DeviceKey, describeDeviceKey } from './device-key.js';
import { DEVICE } from './device.shape.js';
import { type CreateDeviceDto } from './dto/create-device.dto.js';
import { type DeviceDto } from './dto/device.dto.js';
import { type UpdateDeviceDto } from './dto/update-device.dto.js';
import { Device } from './schemas/device.schema.js';

/** A device read whole, with its revision: what its ETag is made of. */
const VERSIONED = { ...DEVICE.projection, [REVISION]: 1 } as const;

/** Devices: plain CRUD. What deleting one does to the accounts referencing it is the schema's (device.schema.ts). */
@Injectable()
export class DevicesService {
  private readonly query: FilteredQuery<DeviceDto>;

  constructor(@InjectModel(Device.name) private readonly devices: Model<Device>) {
    this.query = new FilteredQuery(devices, DEVICE.projection, (where) => resolveAlternateKeys(devices, 'myId', where));
  }

  async create(dto: CreateDeviceDto): Promise<DeviceDto> {
    const created = await insertOne(this.devices, { myId: dto.myId, deviceUID: dto.deviceUID });
    const { _id, myId, deviceUID, createdAt, updatedAt } = created.toObject();
    return { _id, myId, deviceUID, createdAt, updatedAt, [REVISION]: created.get(REVISION) as number } as DeviceDto;
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

  /** One device; without `fields` it is read whole, with its revision (its ETag). */
  async findOne(key: DeviceKey, fields?: Record<string, 0 | 1>): Promise<DeviceDto> {
    const device = await this.devices
      .findOne(key, fields ?? VERSIONED)
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
   * the 409 must name the field (README, Running on FerretDB). With `ifMatch`, the version
   * condition is part of the update's filter: checked and written in one operation.
   */
  async update(key: DeviceKey, dto: UpdateDeviceDto | CreateDeviceDto, ifMatch?: EntityTagCondition): Promise<DeviceDto> {
    const _id = isIdKey(key) ? key._id : (await this.findOne(key, { _id: 1 }))._id;
    const { matchedCount } = await this.devices
      .updateOne({ _id, ...versionCondition(ifMatch) }, { $set: dto }, { runValidators: true })
      .exec();
    if (matchedCount === 0) throw await this.missed(key, ifMatch, { _id });
    return this.findOne({ _id });
  }

  /**
   * Deletes one device; the schema's deletion pulls its id from every account. With `ifMatch`,
   * the version condition is part of the filter of the deletion's first step (the mark), so a
   * device at another version is left as it was.
   */
  async remove(key: DeviceKey, ifMatch?: EntityTagCondition): Promise<{ count: number }> {
    const { deletedCount } = await this.devices.deleteOne({ ...key, ...versionCondition(ifMatch) }).exec();
    if (deletedCount === 0) throw await this.missed(key, ifMatch);
    return { count: 1 };
  }

  /**
   * LoopBack's updateAll: the given fields on every device `where` matches; answers how many
   * matched, each of which was changed. A unique value (myId, deviceUID) can go to one device
   * only: when two match, 409 and nothing is written.
   */
  async updateAll(where: MongoFilter, dto: UpdateDeviceDto): Promise<{ count: number }> {
    const unique = uniquePaths(this.devices.schema).filter((path) => (dto as Record<string, unknown>)[path] !== undefined);
    const count = await this.query.update(where, { ...dto }, unique.length > 0 ? () => uniqueOnMany(unique) : undefined);
    return { count };
  }

  /** Why a write of one device matched nothing: 412 when only its version did not match, else 404. */
  private async missed(key: DeviceKey, ifMatch: EntityTagCondition | undefined, filter: DeviceKey = key) {
    const exists = ifMatch !== undefined && (await this.devices.exists(filter).exec()) !== null;
    return exists ? preconditionFailed(`Device ${describeDeviceKey(key)}`) : deviceNotFound(key);
  }
}

function uniqueOnMany(paths: readonly string[]) {
  const details = paths.map((path) => ({
    path,
    code: 'duplicate',
    message: `${path}: more than one device matches where, and a ${path} can be given to one device only`,
  }));
  return conflict(details.map((detail) => detail.message).join('; '), details);
}

export function deviceNotFound(key: DeviceKey) {
  return notFound(`Device ${describeDeviceKey(key)} not found`);
}
