import { Body, Controller, Delete, Get, Head, HttpCode, Post, Put, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { type Types } from 'mongoose';
import { Answers, AnswersDocument } from '../common/decorators/answers.decorator.js';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery, ApiWhereQuery } from '../common/decorators/api-filter.decorator.js';
import { Responds } from '../common/decorators/responds.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ParseFilterPipe, ParseWherePipe } from '../common/filter/filter.pipes.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type EntityTagCondition } from '../common/http/entity-tags.js';
import { ConditionalRead, IfMatch } from '../common/interceptors/entity-tag.interceptor.js';
import { ApiPageResponse } from '../common/interceptors/total-count.interceptor.js';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
import { type DeviceKey } from '../devices/device-key.js';
import { DEVICE } from '../devices/device.shape.js';
import { DevicesService } from '../devices/devices.service.js';
import {
  DEVICE_FILTER_EXAMPLES,
  DEVICE_NOT_FOUND,
  DEVICE_WHERE_EXAMPLES,
  DeviceKeyParam,
  MY_ID_RESERVED,
  MY_ID_TAKEN,
} from '../devices/devices.openapi.js';
import { CreateDeviceDto } from '../devices/dto/create-device.dto.js';
import { DeviceDto } from '../devices/dto/device.dto.js';
import { UpdateDeviceDto } from '../devices/dto/update-device.dto.js';
import { InjectRelation } from '../relations/references-many.module.js';
import { type Position } from '../relations/position.js';
import { type ReferencesMany } from '../relations/references-many.js';
import { RelationField } from '../relations/relation-field.interceptor.js';
import { ACCOUNT_DEVICES } from './account-devices.relation.js';
import { ACCOUNT } from './account.shape.js';
import {
  ACCOUNT_NAMED,
  ACCOUNT_NOT_FOUND,
  AccountIdParam,
  DEVICE_NOT_LINKED,
  DevicePositionQuery,
  ListsDevices,
  tooManyDevices,
} from './accounts.openapi.js';
import { AccountDto } from './dto/account.dto.js';
import { DeviceIdsDto } from './dto/device-ids.dto.js';

/**
 * The referencesMany relation of an account to its devices. Every route acts on this
 * account's devices only, and answers 404 for an unknown account.
 */
@ApiTags('account devices')
@ApiErrors(ACCOUNT_NOT_FOUND, 503)
@Controller('accounts/:id/devices')
export class AccountDevicesController {
  constructor(
    @InjectRelation(ACCOUNT_DEVICES.name) private readonly relation: ReferencesMany<AccountDto, DeviceDto>,
    private readonly devices: DevicesService,
  ) {}

  /** The account's devices, in reference order unless `order` says otherwise. */
  @SerializeAs(200, arrayOf(DEVICE.json))
  @Get()
  @ApiFilterQuery(DEVICE_FILTER_EXAMPLES)
  @ApiPageResponse(DeviceDto, "The account's matching devices", "Number of the account's devices matching `where`")
  findAccountDevices(
    @AccountIdParam() id: Types.ObjectId,
    @Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter,
  ): Promise<Page<DeviceDto>> {
    return this.relation.page(id, filter);
  }

  /** Counts this account's devices matching `where` (not the whole collection). */
  @Get('count')
  @ApiWhereQuery(DEVICE_WHERE_EXAMPLES)
  @Answers(200, countJson, "How many of the account's devices match")
  async countAccountDevices(
    @AccountIdParam() id: Types.ObjectId,
    @Query(new ParseWherePipe(DEVICE.filter)) where: MongoFilter,
  ): Promise<CountDto> {
    return { count: await this.relation.count(id, where) };
  }

  /** Creates a device and links it to the account. */
  @Post()
  @Answers(201, DEVICE.json, 'The new device, linked to the account')
  @ApiErrors(400, MY_ID_RESERVED, MY_ID_TAKEN, tooManyDevices('id'))
  @RelationField('id')
  createAccountDevice(@AccountIdParam() id: Types.ObjectId, @Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.relation.createLinked(id, () => this.devices.create(dto));
  }

  /** Deletes this account's devices, and only those; each is removed from every account. */
  @Delete()
  @HttpCode(200)
  @Answers(200, countJson, 'How many devices were deleted')
  deleteAccountDevices(@AccountIdParam() id: Types.ObjectId): Promise<CountDto> {
    return this.relation.deleteLinked(id);
  }

  /**
   * Links several devices at once: all of them or, with a 422 naming the unknown ids, none.
   * With `position`, they go there as one block, in the given order, linked ones moving too.
   */
  @Post('rel')
  @HttpCode(200)
  @AnswersDocument(200, ACCOUNT.json, 'The account with the devices linked')
  @ApiErrors(400)
  @ListsDevices('ids')
  linkDevices(
    @AccountIdParam() id: Types.ObjectId,
    @Body() dto: DeviceIdsDto,
    @DevicePositionQuery() position?: Position,
  ): Promise<AccountDto> {
    return this.relation.linkMany(id, dto.ids, position);
  }

  /**
   * Replaces the whole relation with `ids`, in that order. The relation is the account's
   * `deviceIds`, so its version is the account's ETag: with If-Match, a set read before another
   * client changed it is refused (412) instead of overwriting that change.
   */
  @Put('rel')
  @AnswersDocument(200, ACCOUNT.json, 'The account with exactly these devices linked')
  @ApiErrors(400)
  @ListsDevices('ids')
  replaceLinkedDevices(
    @AccountIdParam() id: Types.ObjectId,
    @Body() dto: DeviceIdsDto,
    @IfMatch(ACCOUNT_NAMED) ifMatch?: EntityTagCondition,
  ): Promise<AccountDto> {
    return this.relation.replace(id, dto.ids, ifMatch);
  }

  /**
   * Links a device to the account (idempotent: linking twice keeps one reference, where it is).
   * With `position`, it goes there, moving if it was linked already.
   */
  @Put('rel/:fk')
  @Answers(200, DEVICE.json, 'The linked device')
  @ApiErrors(DEVICE_NOT_FOUND, tooManyDevices('fk'))
  @RelationField('fk')
  linkDevice(
    @AccountIdParam() id: Types.ObjectId,
    @DeviceKeyParam('fk') key: DeviceKey,
    @DevicePositionQuery() position?: Position,
  ): Promise<DeviceDto> {
    return this.relation.link(id, key, position);
  }

  /** Unlinks a device; the device itself stays. */
  @Delete('rel/:fk')
  @HttpCode(204)
  @Responds(204, 'Unlinked')
  @ApiErrors(DEVICE_NOT_FOUND, DEVICE_NOT_LINKED)
  unlinkDevice(@AccountIdParam() id: Types.ObjectId, @DeviceKeyParam('fk') key: DeviceKey): Promise<void> {
    return this.relation.unlink(id, key);
  }

  /** 200 when the device is linked to the account, 404 when it is not. */
  @Head('rel/:fk')
  @Responds(200, 'The device is linked (no body)')
  @ApiErrors(DEVICE_NOT_FOUND, DEVICE_NOT_LINKED)
  async headDeviceLink(@AccountIdParam() id: Types.ObjectId, @DeviceKeyParam('fk') key: DeviceKey): Promise<void> {
    await this.relation.assertLinked(id, key);
  }

  /** A linked device (404 unless linked), with the device's ETag. */
  @Get(':fk')
  @Answers(200, DEVICE.json, 'The linked device')
  @ConditionalRead()
  @ApiErrors(DEVICE_NOT_FOUND, DEVICE_NOT_LINKED)
  async findAccountDevice(@AccountIdParam() id: Types.ObjectId, @DeviceKeyParam('fk') key: DeviceKey): Promise<DeviceDto> {
    return this.devices.findOne({ _id: await this.relation.assertLinked(id, key) });
  }

  /** Changes fields of a linked device (404 unless linked), as LoopBack's related updateById. */
  @Put(':fk')
  @AnswersDocument(200, DEVICE.json, 'The linked device as changed')
  @ApiErrors(400, MY_ID_RESERVED, DEVICE_NOT_FOUND, DEVICE_NOT_LINKED, MY_ID_TAKEN)
  async updateAccountDevice(
    @AccountIdParam() id: Types.ObjectId,
    @DeviceKeyParam('fk') key: DeviceKey,
    @Body() dto: UpdateDeviceDto,
  ): Promise<DeviceDto> {
    return this.devices.update({ _id: await this.relation.assertLinked(id, key) }, dto);
  }

  /** Destroys a linked device (404 unless linked); it is removed from every account. */
  @Delete(':fk')
  @HttpCode(200)
  @Answers(200, countJson, 'Deleted: `count` is 1')
  @ApiErrors(DEVICE_NOT_FOUND, DEVICE_NOT_LINKED)
  async deleteAccountDevice(@AccountIdParam() id: Types.ObjectId, @DeviceKeyParam('fk') key: DeviceKey): Promise<CountDto> {
    return this.devices.remove({ _id: await this.relation.assertLinked(id, key) });
  }
}
