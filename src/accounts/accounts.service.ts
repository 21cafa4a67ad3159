import { Inject, Injectable } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { notFound, unprocessable } from '../common/errors.js';
import { relationConfig } from '../config/relation.config.js';
import { type DeviceKey, describeDeviceKey } from '../devices/device-key.js';
import { type Page, DevicesService, deviceNotFound } from '../devices/devices.service.js';
import { type Device } from '../devices/schemas/device.schema.js';
import { type AccountDto } from './dto/account.dto.js';
import { type CreateAccountDto } from './dto/create-account.dto.js';
import { type UpdateAccountDto } from './dto/update-account.dto.js';
import { Account } from './schemas/account.schema.js';

const ACCOUNT_FIELDS = { _id: 1, name: 1, deviceIds: 1, createdAt: 1, updatedAt: 1 } as const;

export interface ReadOptions {
  include?: 'devices';
}

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
    const deviceIds = await this.resolveDeviceIds(dto.deviceIds ?? []);
    const created = await this.accounts.create({ name: dto.name, deviceIds });
    return this.withoutVanishedDevices(created.toObject());
  }

  async findAll(page: { skip: number; limit: number }, options: ReadOptions = {}): Promise<Page<AccountDto>> {
    const [items, total] = await Promise.all([
      this.accounts.find({}, ACCOUNT_FIELDS).sort({ _id: 1 }).skip(page.skip).limit(page.limit).lean().exec(),
      this.accounts.countDocuments().exec(),
    ]);
    return { items: options.include === 'devices' ? await this.withDevices(items) : items, total };
  }

  async findOne(id: Types.ObjectId, options: ReadOptions = {}): Promise<AccountDto> {
    const account = await this.accounts.findById(id, ACCOUNT_FIELDS).lean().exec();
    if (!account) throw accountNotFound(id);
    return options.include === 'devices' ? (await this.withDevices([account]))[0] : account;
  }

  /** PATCH: the given fields only; a given `deviceIds` replaces the whole list. */
  update(id: Types.ObjectId, dto: UpdateAccountDto): Promise<AccountDto> {
    return this.write(id, dto);
  }

  /** PUT: every field; a missing `deviceIds` empties the relation. */
  replace(id: Types.ObjectId, dto: CreateAccountDto): Promise<AccountDto> {
    return this.write(id, { name: dto.name, deviceIds: dto.deviceIds ?? [] });
  }

  /** Deletes the account; its devices stay. */
  async remove(id: Types.ObjectId): Promise<{ count: number }> {
    const result = await this.accounts.deleteOne({ _id: id }).exec();
    if (result.deletedCount === 0) throw accountNotFound(id);
    return { count: 1 };
  }

  /**
   * A page of the account's devices in reference order. Only the page's ids are read from
   * the account ($slice), and only those devices fetched, however long the relation is.
   */
  async listDevices(id: Types.ObjectId, page: { skip: number; limit: number }): Promise<Page<Device>> {
    const [slice] = await this.accounts
      .aggregate<{ total: number; ids: Types.ObjectId[] }>([
        { $match: { _id: id } },
        { $project: { _id: 0, total: { $size: '$deviceIds' }, ids: { $slice: ['$deviceIds', page.skip, page.limit] } } },
      ])
      .exec();
    if (!slice) throw accountNotFound(id);
    return { items: inOrder(slice.ids, await this.devices.findByIds(slice.ids)), total: slice.total };
  }

  /**
   * Links a device (idempotent) and returns it. The size limit is part of the update's
   * filter, so it holds under concurrent links without a read first.
   */
  async link(id: Types.ObjectId, key: DeviceKey): Promise<Device> {
    const deviceId = await this.devices.idOf(key);
    const max = this.relation.maxDevicesPerAccount;
    const result = await this.accounts
      .updateOne(
        { _id: id, $or: [{ deviceIds: deviceId }, { [`deviceIds.${max - 1}`]: { $exists: false } }] },
        { $addToSet: { deviceIds: deviceId } },
      )
      .exec();
    if (result.matchedCount === 0) {
      if (!(await this.accounts.exists({ _id: id }).exec())) throw accountNotFound(id);
      throw tooManyDevices(max, 'fk');
    }
    // The re-check after the write closes the race with a deletion of the device:
    // - deleted before our $addToSet: its cleanup has already run, so only this check sees
    //   the device missing, and pulls the id back out (404);
    // - deleted after our $addToSet: its cleanup's $pull runs after our write and removes the
    //   id, whatever this check saw. Either way no dangling id survives.
    const [device] = await this.devices.findByIds([deviceId]);
    if (!device) {
      await this.accounts.updateOne({ _id: id }, { $pull: { deviceIds: deviceId } }).exec();
      throw deviceNotFound(key);
    }
    return device;
  }

  async unlink(id: Types.ObjectId, key: DeviceKey): Promise<void> {
    const deviceId = await this.devices.idOf(key);
    const result = await this.accounts.updateOne({ _id: id, deviceIds: deviceId }, { $pull: { deviceIds: deviceId } }).exec();
    if (result.matchedCount === 0) throw await this.notLinked(id, key);
  }

  /** Resolves when the device is linked to the account, throws 404 otherwise. */
  async assertLinked(id: Types.ObjectId, key: DeviceKey): Promise<void> {
    const deviceId = await this.devices.idOf(key);
    if (!(await this.accounts.exists({ _id: id, deviceIds: deviceId }).exec())) throw await this.notLinked(id, key);
  }

  private async write(id: Types.ObjectId, changes: { name?: string; deviceIds?: string[] }): Promise<AccountDto> {
    const $set: { name?: string; deviceIds?: Types.ObjectId[] } = {};
    if (changes.name !== undefined) $set.name = changes.name;
    if (changes.deviceIds !== undefined) $set.deviceIds = await this.resolveDeviceIds(changes.deviceIds);
    const account = await this.accounts
      .findOneAndUpdate({ _id: id }, { $set }, { returnDocument: 'after', runValidators: true, projection: ACCOUNT_FIELDS })
      .lean()
      .exec();
    if (!account) throw accountNotFound(id);
    return $set.deviceIds?.length ? this.withoutVanishedDevices(account) : account;
  }

  private async resolveDeviceIds(values: string[]): Promise<Types.ObjectId[]> {
    const max = this.relation.maxDevicesPerAccount;
    if (values.length > max) throw tooManyDevices(max, 'deviceIds');
    return this.devices.resolveIds(values, 'deviceIds');
  }

  /**
   * After a write of a whole list: a device deleted between our read of it and our write
   * would otherwise stay referenced (its cleanup ran before the id was written).
   */
  private async withoutVanishedDevices(account: AccountDto): Promise<AccountDto> {
    const vanished = await this.devices.missing(account.deviceIds);
    if (vanished.length === 0) return account;
    const updated = await this.accounts
      .findOneAndUpdate({ _id: account._id }, { $pull: { deviceIds: { $in: vanished } } }, { returnDocument: 'after', projection: ACCOUNT_FIELDS })
      .lean()
      .exec();
    if (!updated) throw accountNotFound(account._id);
    return updated;
  }

  /** Adds `devices` to each account with one read for all of them, in `deviceIds` order. */
  private async withDevices(accounts: AccountDto[]): Promise<AccountDto[]> {
    const ids = [...new Map(accounts.flatMap((account) => account.deviceIds).map((id) => [id.toHexString(), id])).values()];
    const devices = await this.devices.findByIds(ids);
    return accounts.map((account) => ({ ...account, devices: inOrder(account.deviceIds, devices) }));
  }

  private async notLinked(id: Types.ObjectId, key: DeviceKey) {
    if (!(await this.accounts.exists({ _id: id }).exec())) return accountNotFound(id);
    return notFound(`Device ${describeDeviceKey(key)} is not linked to account ${id.toHexString()}`);
  }
}

/** `devices` arranged in the order of `ids`; ids without a device are left out. */
function inOrder(ids: readonly Types.ObjectId[], devices: readonly Device[]): Device[] {
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
