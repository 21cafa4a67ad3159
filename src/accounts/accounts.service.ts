import { Inject, Injectable } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { notFound, unprocessable } from '../common/errors.js';
import { FILTER_LIMITS } from '../common/filter/filter.limits.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { projectionWith, without } from '../common/filter/projection.js';
import { relationConfig } from '../config/config.module.js';
import { type DeviceKey, describeDeviceKey } from '../devices/device-key.js';
import { DevicesService, deviceNotFound, stableSort } from '../devices/devices.service.js';
import { type Page, pageOf } from '../common/filter/page.js';
import { type CreateDeviceDto } from '../devices/dto/create-device.dto.js';
import { type DeviceDto } from '../devices/dto/device.dto.js';
import { type UpdateDeviceDto } from '../devices/dto/update-device.dto.js';
import { type AccountDto } from './dto/account.dto.js';
import { type CreateAccountDto } from './dto/create-account.dto.js';
import { type UpdateAccountDto } from './dto/update-account.dto.js';
import { Account } from './schemas/account.schema.js';

const ACCOUNT_FIELDS = { _id: 1, name: 1, deviceIds: 1, createdAt: 1, updatedAt: 1 } as const;

/**
 * Accounts and the relation's rules, in one place. Every change to `deviceIds` is a single
 * atomic update ($addToSet, $pull, or $set of a validated list), never a read-modify-write,
 * so concurrent requests cannot lose ids; every write that can add an id is followed by a
 * check that the device still exists, so a link racing a deletion cannot leave a dangling id.
 */
@Injectable()
export class AccountsService {
  constructor(
    @InjectModel(Account.name) private readonly accounts: Model<Account>,
    private readonly devices: DevicesService,
    @Inject(relationConfig.KEY) private readonly relation: ConfigType<typeof relationConfig>,
  ) {}

  async create(dto: CreateAccountDto): Promise<AccountDto> {
    const deviceIds = await this.resolveDeviceIds(dto.deviceIds ?? [], 'deviceIds');
    const created = await this.accounts.create({ name: dto.name, deviceIds });
    const { _id, name, createdAt, updatedAt } = created.toObject();
    return this.withoutVanishedDevices({ _id, name, deviceIds, createdAt, updatedAt });
  }

  /** Accounts matching the filter; `within` narrows them further (the reverse lookup). */
  async findAll(filter: ParsedFilter, within?: MongoFilter): Promise<Page<AccountDto>> {
    const own = await this.devices.resolveRefs(filter.where);
    const where = within ? { $and: [within, own] } : own;
    const { find, answer } = this.query(filter, where);
    const page = await pageOf(
      find,
      () => this.accounts.countDocuments(where).exec(),
      filter.skip,
      filter.limit ?? FILTER_LIMITS.defaultLimit,
    );
    return { items: await answer(page.items), total: page.total };
  }

  async count(where: MongoFilter): Promise<number> {
    return this.accounts.countDocuments(await this.devices.resolveRefs(where)).exec();
  }

  /** The first account matching the filter, or 404. No total is needed, so nothing is counted. */
  async findFirst(filter: ParsedFilter): Promise<AccountDto> {
    const { find, answer } = this.query(filter, await this.devices.resolveRefs(filter.where));
    const [first] = await answer(await find(1));
    if (!first) throw notFound('No account matches the filter');
    return first;
  }

  /** One account; the filter's `fields` and `include` apply (its where, order and paging do not). */
  async findOne(id: Types.ObjectId, filter?: ParsedFilter): Promise<AccountDto> {
    const include = filter?.include.find((item) => item.relation === 'devices');
    const { projection, strip } = projectionWith(filter?.fields, include ? ['deviceIds'] : []);
    const account = await this.accounts
      .findById(id, projection ?? ACCOUNT_FIELDS)
      .lean<AccountDto>()
      .exec();
    if (!account) throw accountNotFound(id);
    const [result] = include ? await this.withDevices([account], include.scope) : [account];
    return without(result, strip);
  }

  async exists(id: Types.ObjectId): Promise<boolean> {
    return (await this.accounts.exists({ _id: id }).exec()) !== null;
  }

  async assertExists(id: Types.ObjectId): Promise<void> {
    if (!(await this.exists(id))) throw accountNotFound(id);
  }

  /** PATCH: the given fields only; a given `deviceIds` replaces the whole list. */
  update(id: Types.ObjectId, dto: UpdateAccountDto): Promise<AccountDto> {
    return this.write(id, dto, 'deviceIds');
  }

  /** PUT: every field; a missing `deviceIds` empties the relation. */
  replace(id: Types.ObjectId, dto: CreateAccountDto): Promise<AccountDto> {
    return this.write(id, { name: dto.name, deviceIds: dto.deviceIds ?? [] }, 'deviceIds');
  }

  /** Deletes the account; its devices stay. */
  async remove(id: Types.ObjectId): Promise<{ count: number }> {
    const result = await this.accounts.deleteOne({ _id: id }).exec();
    if (result.deletedCount === 0) throw accountNotFound(id);
    return { count: 1 };
  }

  /** The accounts that reference a device (404 for an unknown device); served by the multikey index. */
  async referencing(key: DeviceKey, filter: ParsedFilter): Promise<Page<AccountDto>> {
    const deviceId = await this.devices.idOf(key);
    const page = await this.findAll(filter, { deviceIds: deviceId });
    // An account that references the device proves it exists (Invariant 1); only an empty
    // answer needs to ask whether the device is unknown (404) or merely unreferenced.
    if (page.total === 0 && '_id' in key && !(await this.devices.exists(key))) throw deviceNotFound(key);
    return page;
  }

  /**
   * A page of the account's devices. Without `where` or `order` only the page's ids are read
   * from the account ($slice) and only those devices fetched, however long the relation is.
   * With them, the devices collection is queried within the account's ids; without an
   * `order` the reference order is kept.
   */
  async listDevices(id: Types.ObjectId, filter: ParsedFilter): Promise<Page<DeviceDto>> {
    const where = await this.devices.resolveRefs(filter.where);
    const limit = filter.limit ?? FILTER_LIMITS.defaultLimit;
    const { projection, strip } = projectionWith(filter.fields, ['_id']);
    const answer = (devices: DeviceDto[]) => devices.map((device) => without(device, strip));

    if (Object.keys(where).length === 0 && !filter.order) {
      const [slice] = await this.accounts
        .aggregate<{ total: number; ids: Types.ObjectId[] }>([
          { $match: { _id: id } },
          { $project: { _id: 0, total: { $size: '$deviceIds' }, ids: { $slice: ['$deviceIds', filter.skip, limit] } } },
        ])
        .exec();
      if (!slice) throw accountNotFound(id);
      const devices = await this.devices.findByIds(slice.ids, { fields: projection });
      return { items: answer(inOrder(slice.ids, devices)), total: slice.total };
    }

    const ids = await this.deviceIdsOf(id);
    if (filter.order) {
      const page = await this.devices.findAll({ ...filter, where: { $and: [{ _id: { $in: ids } }, where] }, fields: projection, limit });
      return { items: answer(page.items), total: page.total };
    }
    const matching = await this.devices.findByIds(ids, { where, fields: { _id: 1 } });
    const ordered = inOrder(ids, matching).map((device) => device._id);
    const pageIds = ordered.slice(filter.skip, filter.skip + limit);
    const devices = await this.devices.findByIds(pageIds, { fields: projection });
    return { items: answer(inOrder(pageIds, devices)), total: ordered.length };
  }

  /** Counts the account's devices matching `where`, never the whole collection. */
  async countDevices(id: Types.ObjectId, where: MongoFilter): Promise<number> {
    if (Object.keys(where).length === 0) {
      const [result] = await this.accounts
        .aggregate<{ count: number }>([{ $match: { _id: id } }, { $project: { _id: 0, count: { $size: '$deviceIds' } } }])
        .exec();
      if (!result) throw accountNotFound(id);
      return result.count;
    }
    return this.devices.countAmong(await this.deviceIdsOf(id), await this.devices.resolveRefs(where));
  }

  /** Creates a device and links it; if the link fails the device is removed again. */
  async createDevice(id: Types.ObjectId, dto: CreateDeviceDto): Promise<DeviceDto> {
    await this.assertExists(id);
    const device = await this.devices.create(dto);
    try {
      return await this.link(id, { _id: device._id }, 'id');
    } catch (error) {
      await this.devices.removeMany([device._id]);
      throw error;
    }
  }

  /** Deletes this account's devices, and only those; each is pulled from every account. */
  async deleteDevices(id: Types.ObjectId): Promise<{ count: number }> {
    return this.devices.removeMany(await this.deviceIdsOf(id));
  }

  async findLinkedDevice(id: Types.ObjectId, key: DeviceKey): Promise<DeviceDto> {
    return this.devices.findOne({ _id: await this.assertLinked(id, key) });
  }

  async updateLinkedDevice(id: Types.ObjectId, key: DeviceKey, dto: UpdateDeviceDto): Promise<DeviceDto> {
    return this.devices.update({ _id: await this.assertLinked(id, key) }, dto);
  }

  /** Destroys a linked device; like any device deletion it is pulled from every account. */
  async removeLinkedDevice(id: Types.ObjectId, key: DeviceKey): Promise<{ count: number }> {
    return this.devices.remove({ _id: await this.assertLinked(id, key) });
  }

  /**
   * Links a device (idempotent) and returns it. The device is read first, so an unknown one
   * is a 404 that never touches the account; the size limit is part of the update's filter,
   * so it holds under concurrent links without a read of the account.
   */
  async link(id: Types.ObjectId, key: DeviceKey, limitPath = 'fk'): Promise<DeviceDto> {
    const device = await this.devices.findOne(key);
    const max = this.relation.maxDevicesPerAccount;
    const result = await this.accounts
      .updateOne(
        // `_id` first and apart: Mongoose puts a top-level $or before `_id`, and an engine that
        // matches in order (mongo-java-server) then tests the $or on every account, 7× slower.
        { $and: [{ _id: id }, { $or: [{ deviceIds: device._id }, { [`deviceIds.${max - 1}`]: { $exists: false } }] }] },
        { $addToSet: { deviceIds: device._id } },
      )
      .exec();
    if (result.matchedCount === 0) {
      await this.assertExists(id);
      throw tooManyDevices(max, limitPath);
    }
    // The re-check after the write closes the race with a deletion of the device:
    // - deleted between our read and our $addToSet: its cleanup has already run, so only this
    //   check sees the device missing, and pulls the id back out (404);
    // - deleted after our $addToSet: its cleanup's $pull runs after our write and removes the
    //   id, whatever this check saw. Either way no dangling id survives.
    if (!(await this.devices.exists({ _id: device._id }))) {
      await this.accounts.updateOne({ _id: id }, { $pull: { deviceIds: device._id } }).exec();
      throw deviceNotFound(key);
    }
    return device;
  }

  /**
   * Links several devices at once, all or nothing: every id is resolved first (422 naming the
   * unknown ones), then one $addToSet whose filter admits it only if the union stays within
   * the limit.
   */
  async linkMany(id: Types.ObjectId, values: string[]): Promise<AccountDto> {
    await this.assertExists(id);
    const ids = await this.resolveDeviceIds(values, 'ids');
    if (ids.length === 0) return this.findOne(id);
    const max = this.relation.maxDevicesPerAccount;
    const result = await this.accounts
      .updateOne(
        { $and: [{ _id: id }, { $expr: { $lte: [{ $size: { $setUnion: ['$deviceIds', ids] } }, max] } }] },
        { $addToSet: { deviceIds: { $each: ids } } },
      )
      .exec();
    if (result.matchedCount === 0) {
      if (!(await this.exists(id))) throw accountNotFound(id);
      throw tooManyDevices(max, 'ids');
    }
    return this.withoutVanishedDevices(await this.findOne(id));
  }

  /** Replaces the whole relation with `values`, in that order. */
  replaceDevices(id: Types.ObjectId, values: string[]): Promise<AccountDto> {
    return this.write(id, { deviceIds: values }, 'ids');
  }

  async unlink(id: Types.ObjectId, key: DeviceKey): Promise<void> {
    const deviceId = await this.devices.idOf(key);
    const result = await this.accounts.updateOne({ _id: id, deviceIds: deviceId }, { $pull: { deviceIds: deviceId } }).exec();
    if (result.matchedCount === 0) throw await this.notLinked(id, key);
  }

  /** The device's ObjectId when it is linked to the account; 404 otherwise. */
  async assertLinked(id: Types.ObjectId, key: DeviceKey): Promise<Types.ObjectId> {
    const deviceId = await this.devices.idOf(key);
    if (!(await this.accounts.exists({ _id: id, deviceIds: deviceId }).exec())) throw await this.notLinked(id, key);
    return deviceId;
  }

  /**
   * The account query a filter describes (fields, order, skip; `rows` at most), and how its
   * result becomes the answer: devices included per the scope, unrequested fields removed.
   */
  private query(filter: ParsedFilter, where: MongoFilter) {
    const include = filter.include.find((item) => item.relation === 'devices');
    const { projection, strip } = projectionWith(filter.fields, include ? ['deviceIds'] : []);
    return {
      find: (rows: number) =>
        this.accounts
          .find(where, projection ?? ACCOUNT_FIELDS)
          .sort(stableSort(filter.order))
          .skip(filter.skip)
          .limit(rows)
          .lean<AccountDto[]>()
          .exec(),
      answer: async (accounts: AccountDto[]) => {
        const items = include ? await this.withDevices(accounts, include.scope) : accounts;
        return items.map((account) => without(account, strip));
      },
    };
  }

  private async deviceIdsOf(id: Types.ObjectId): Promise<Types.ObjectId[]> {
    const account = await this.accounts.findById(id, { _id: 0, deviceIds: 1 }).lean().exec();
    if (!account) throw accountNotFound(id);
    return account.deviceIds;
  }

  private async write(id: Types.ObjectId, changes: { name?: string; deviceIds?: string[] }, field: string): Promise<AccountDto> {
    const $set: { name?: string; deviceIds?: Types.ObjectId[] } = {};
    if (changes.name !== undefined) $set.name = changes.name;
    if (changes.deviceIds !== undefined) {
      // An unknown account is a 404 before anything is said about its devices.
      await this.assertExists(id);
      $set.deviceIds = await this.resolveDeviceIds(changes.deviceIds, field);
    }
    const account = await this.accounts
      .findOneAndUpdate({ _id: id }, { $set }, { returnDocument: 'after', runValidators: true, projection: ACCOUNT_FIELDS })
      .lean<AccountDto>()
      .exec();
    if (!account) throw accountNotFound(id);
    return $set.deviceIds?.length ? this.withoutVanishedDevices(account) : account;
  }

  private async resolveDeviceIds(values: string[], field: string): Promise<Types.ObjectId[]> {
    const max = this.relation.maxDevicesPerAccount;
    if (values.length > max) throw tooManyDevices(max, field);
    return this.devices.resolveIds(values, field);
  }

  /**
   * After a write of a whole list: a device deleted between our read of it and our write
   * would otherwise stay referenced (its cleanup ran before the id was written).
   */
  private async withoutVanishedDevices(account: AccountDto): Promise<AccountDto> {
    const vanished = await this.devices.missing(account.deviceIds);
    if (vanished.length === 0) return account;
    const updated = await this.accounts
      .findOneAndUpdate(
        { _id: account._id },
        { $pull: { deviceIds: { $in: vanished } } },
        { returnDocument: 'after', projection: ACCOUNT_FIELDS },
      )
      .lean<AccountDto>()
      .exec();
    if (!updated) throw accountNotFound(account._id);
    return updated;
  }

  /**
   * Adds `devices` to each account with one read for all of them: in `deviceIds` order, or in
   * the scope's order, with the scope's where, fields, skip and limit applied per account.
   */
  private async withDevices(accounts: AccountDto[], scope: ParsedFilter): Promise<AccountDto[]> {
    // One account's ids are already unique (Invariant 2); several accounts may share devices.
    const ids =
      accounts.length === 1
        ? accounts[0].deviceIds
        : [...new Map(accounts.flatMap((account) => account.deviceIds).map((id) => [id.toHexString(), id])).values()];
    const where = await this.devices.resolveRefs(scope.where);
    const { projection, strip } = projectionWith(scope.fields, ['_id']);
    const devices = await this.devices.findByIds(ids, { where, fields: projection, order: scope.order });
    const end = scope.limit === undefined ? undefined : scope.skip + scope.limit;
    return accounts.map((account) => {
      const ordered = scope.order ? inOrderOf(devices, account.deviceIds) : inOrder(account.deviceIds, devices);
      const page = scope.skip > 0 || end !== undefined ? ordered.slice(scope.skip, end) : ordered;
      return { ...account, devices: strip.length > 0 ? page.map((device) => without(device, strip)) : page };
    });
  }

  private async notLinked(id: Types.ObjectId, key: DeviceKey) {
    if (!(await this.exists(id))) return accountNotFound(id);
    return notFound(`Device ${describeDeviceKey(key)} is not linked to account ${id.toHexString()}`);
  }
}

/** The `devices` (already sorted) that are among `ids`, in their own order. */
function inOrderOf<T extends { _id: Types.ObjectId }>(devices: readonly T[], ids: readonly Types.ObjectId[]): T[] {
  const own = new Set(ids.map((id) => id.toHexString()));
  return devices.filter((device) => own.has(device._id.toHexString()));
}

/** `devices` arranged in the order of `ids`; ids without a device are left out. */
function inOrder<T extends { _id: Types.ObjectId }>(ids: readonly Types.ObjectId[], devices: readonly T[]): T[] {
  const byId = new Map(devices.map((device) => [device._id.toHexString(), device]));
  return ids.flatMap((id) => byId.get(id.toHexString()) ?? []);
}

export function accountNotFound(id: Types.ObjectId) {
  return notFound(`Account ${id.toHexString()} not found`);
}

function tooManyDevices(max: number, path: string) {
  const message = `An account references at most ${max} devices`;
  return unprocessable(message, [{ path, code: 'too_many_devices', message }]);
}
