import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { notFound } from '../common/errors.js';
import { FilteredQuery } from '../common/filter/filtered-query.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type EntityTagCondition, versionCondition } from '../common/http/entity-tags.js';
import { REVISION } from '../common/schema/revision.plugin.js';
import { insertOne } from '../common/schema/time-limit.js';
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

/** An account read whole, with its revision: what its ETag is made of. */
const VERSIONED = { ...ACCOUNT.projection, [REVISION]: 1 } as const;

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
    const created = await insertOne(this.accounts, { name: dto.name, deviceIds });
    const { _id, name, createdAt, updatedAt } = created.toObject();
    return this.devices.settle({ _id, name, deviceIds, createdAt, updatedAt, [REVISION]: created.get(REVISION) as number } as AccountDto);
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

  /**
   * One account; the filter's `fields` and `include` apply (its where, order and paging do not).
   * Read whole, it comes with its revision (its ETag); picked or with devices included, without.
   */
  async findOne(id: Types.ObjectId, filter?: ParsedFilter): Promise<AccountDto> {
    const whole = !filter || (filter.fields === undefined && filter.include.length === 0);
    const { projection, answer } = whole ? { projection: VERSIONED, answer: async (a: AccountDto[]) => a } : this.devices.including(filter);
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
  update(id: Types.ObjectId, dto: UpdateAccountDto, ifMatch?: EntityTagCondition): Promise<AccountDto> {
    return this.write(id, dto, ifMatch);
  }

  /** PUT: every field; a missing `deviceIds` empties the relation. */
  replace(id: Types.ObjectId, dto: CreateAccountDto, ifMatch?: EntityTagCondition): Promise<AccountDto> {
    return this.write(id, { name: dto.name, deviceIds: dto.deviceIds ?? [] }, ifMatch);
  }

  /** Deletes the account; its devices stay. With `ifMatch`, only at a version it names (412 otherwise). */
  async remove(id: Types.ObjectId, ifMatch?: EntityTagCondition): Promise<{ count: number }> {
    const result = await this.accounts.deleteOne({ _id: id, ...versionCondition(ifMatch) }).exec();
    if (result.deletedCount === 0) throw await this.devices.missedSource(id, ifMatch);
    return { count: 1 };
  }

  /**
   * LoopBack's updateAll: the given fields on every account `where` matches; answers how many
   * matched, each of which was changed (its `updatedAt` and version move on). `deviceIds` is
   * resolved and checked as in any write, and settled as in any write of ids.
   */
  async updateAll(where: MongoFilter, dto: UpdateAccountDto): Promise<{ count: number }> {
    const $set: { name?: string; deviceIds?: Types.ObjectId[] } = {};
    if (dto.name !== undefined) $set.name = dto.name;
    if (dto.deviceIds !== undefined) $set.deviceIds = await this.devices.resolveKeys(dto.deviceIds);
    const count = await this.query.update(where, $set);
    if ($set.deviceIds) await this.devices.settleMany($set.deviceIds);
    return { count };
  }

  /** The accounts that reference a device (404 for an unknown device); served by the multikey index. */
  async referencing(key: DeviceKey, filter: ParsedFilter): Promise<Page<AccountDto>> {
    const page = await this.findAll(filter, await this.devices.referencing(key));
    // An account that references the device proves it exists (Invariant 1); only an empty
    // answer needs to ask whether the device is unknown (404) or merely unreferenced.
    if (page.total === 0 && isIdKey(key)) await this.devices.assertTarget(key);
    return page;
  }

  /** With `ifMatch`, the version condition is part of the write's filter: checked and written in one operation. */
  private async write(
    id: Types.ObjectId,
    changes: { name?: string; deviceIds?: string[] },
    ifMatch?: EntityTagCondition,
  ): Promise<AccountDto> {
    const $set: { name?: string; deviceIds?: Types.ObjectId[] } = {};
    if (changes.name !== undefined) $set.name = changes.name;
    if (changes.deviceIds !== undefined) {
      // An unknown account is a 404 before anything is said about its devices.
      await this.assertExists(id);
      $set.deviceIds = await this.devices.resolveKeys(changes.deviceIds);
    }
    const account = await this.accounts
      .findOneAndUpdate(
        { _id: id, ...versionCondition(ifMatch) },
        { $set },
        { returnDocument: 'after', runValidators: true, projection: VERSIONED },
      )
      .lean<AccountDto>()
      .exec();
    if (!account) throw await this.devices.missedSource(id, ifMatch);
    return $set.deviceIds ? this.devices.settle(account) : account;
  }
}
