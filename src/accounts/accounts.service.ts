import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { notFound } from '../common/errors.js';
import { FilteredQuery } from '../common/filter/filtered-query.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type DeviceKey } from '../devices/device-key.js';
import { isIdKey } from '../relations/keys.js';
import { InjectRelation } from '../relations/references-many.module.js';
import { type ReferencesMany } from '../relations/references-many.js';
import { ACCOUNT_DEVICES } from './account-devices.relation.js';
import { ACCOUNT } from './account.shape.js';
import { type AccountDto } from './dto/account.dto.js';
import { type CreateAccountDto } from './dto/create-account.dto.js';
import { type UpdateAccountDto } from './dto/update-account.dto.js';
import { Account } from './schemas/account.schema.js';

/**
 * Accounts: plain CRUD. Their `deviceIds` are the devices relation's (src/relations): keys are
 * resolved by it, every write of ids is settled by it, and `include` is answered by it.
 */
@Injectable()
export class AccountsService {
  private readonly query: FilteredQuery<AccountDto>;

  constructor(
    @InjectModel(Account.name) private readonly accounts: Model<Account>,
    @InjectRelation(ACCOUNT_DEVICES.name) private readonly devices: ReferencesMany<AccountDto>,
  ) {
    this.query = new FilteredQuery(accounts, ACCOUNT.projection, (where) => devices.resolveRefs(where));
  }

  async create(dto: CreateAccountDto): Promise<AccountDto> {
    const deviceIds = await this.devices.resolveKeys(dto.deviceIds ?? []);
    const { _id, name, createdAt, updatedAt } = (await this.accounts.create({ name: dto.name, deviceIds })).toObject();
    return this.devices.settle({ _id, name, deviceIds, createdAt, updatedAt });
  }

  /** Accounts matching the filter; `within` narrows them further (the reverse lookup). */
  async findAll(filter: ParsedFilter, within?: MongoFilter): Promise<Page<AccountDto>> {
    const { projection, answer } = this.devices.including(filter);
    const page = await this.query.page(filter, { within, projection });
    return { items: await answer(page.items), total: page.total };
  }

  count(where: MongoFilter): Promise<number> {
    return this.query.count(where);
  }

  /** The first account matching the filter, or 404. No total is needed, so nothing is counted. */
  async findFirst(filter: ParsedFilter): Promise<AccountDto> {
    const { projection, answer } = this.devices.including(filter);
    const first = await this.query.first(filter, projection);
    if (!first) throw notFound('No account matches the filter');
    return (await answer([first]))[0];
  }

  /** One account; the filter's `fields` and `include` apply (its where, order and paging do not). */
  async findOne(id: Types.ObjectId, filter?: ParsedFilter): Promise<AccountDto> {
    const { projection, answer } = filter
      ? this.devices.including(filter)
      : { projection: undefined, answer: async (a: AccountDto[]) => a };
    const account = await this.accounts
      .findById(id, projection ?? ACCOUNT.projection)
      .lean<AccountDto>()
      .exec();
    if (!account) throw this.devices.sourceNotFound(id);
    return (await answer([account]))[0];
  }

  async exists(id: Types.ObjectId): Promise<boolean> {
    return (await this.accounts.exists({ _id: id }).exec()) !== null;
  }

  async assertExists(id: Types.ObjectId): Promise<void> {
    if (!(await this.exists(id))) throw this.devices.sourceNotFound(id);
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
    if (result.deletedCount === 0) throw this.devices.sourceNotFound(id);
    return { count: 1 };
  }

  /** The accounts that reference a device (404 for an unknown device); served by the multikey index. */
  async referencing(key: DeviceKey, filter: ParsedFilter): Promise<Page<AccountDto>> {
    const page = await this.findAll(filter, await this.devices.referencing(key));
    // An account that references the device proves it exists (Invariant 1); only an empty
    // answer needs to ask whether the device is unknown (404) or merely unreferenced.
    if (page.total === 0 && isIdKey(key)) await this.devices.assertTarget(key);
    return page;
  }

  private async write(id: Types.ObjectId, changes: { name?: string; deviceIds?: string[] }): Promise<AccountDto> {
    const $set: { name?: string; deviceIds?: Types.ObjectId[] } = {};
    if (changes.name !== undefined) $set.name = changes.name;
    if (changes.deviceIds !== undefined) {
      // An unknown account is a 404 before anything is said about its devices.
      await this.assertExists(id);
      $set.deviceIds = await this.devices.resolveKeys(changes.deviceIds);
    }
    const account = await this.accounts
      .findOneAndUpdate({ _id: id }, { $set }, { returnDocument: 'after', runValidators: true, projection: ACCOUNT.projection })
      .lean<AccountDto>()
      .exec();
    if (!account) throw this.devices.sourceNotFound(id);
    return $set.deviceIds ? this.devices.settle(account) : account;
  }
}
