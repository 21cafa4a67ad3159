import { Body, Controller, Delete, Get, Head, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
import { DEVICE_JSON } from '../devices/device.json-schema.js';
import { ACCOUNT_JSON } from './account.json-schema.js';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { type Types } from 'mongoose';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery, ApiWhereQuery } from '../common/decorators/api-filter.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ParseFilterPipe, ParseWherePipe } from '../common/filter/filter.pipes.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { ParseObjectIdPipe } from '../common/pipes/parse-object-id.pipe.js';
import { type DeviceKey } from '../devices/device-key.js';
import { DEVICE_FILTER } from '../devices/device.filter.js';
import { CreateDeviceDto } from '../devices/dto/create-device.dto.js';
import { DeviceDto } from '../devices/dto/device.dto.js';
import { UpdateDeviceDto } from '../devices/dto/update-device.dto.js';
import { ParseDeviceKeyPipe } from '../devices/pipes/parse-device-key.pipe.js';
import { AccountsService } from './accounts.service.js';
import { AccountDto } from './dto/account.dto.js';
import { DeviceIdsDto } from './dto/device-ids.dto.js';

const FK = { name: 'fk', description: 'The device ObjectId or its myId', example: 'thermostat-kitchen' };

/**
 * The referencesMany relation of an account to its devices. Every route acts on this
 * account's devices only, and answers 404 for an unknown account.
 */
@ApiTags('account devices')
@ApiParam({ name: 'id', description: 'The account ObjectId' })
@ApiErrors(400, 404, 503)
@Controller('accounts/:id/devices')
export class AccountDevicesController {
  constructor(private readonly accounts: AccountsService) {}

  /** The account's devices, in reference order unless `order` says otherwise. */
  @SerializeAs(200, arrayOf(DEVICE_JSON))
  @Get()
  @ApiFilterQuery()
  @ApiOkResponse({
    type: [DeviceDto],
    headers: { 'X-Total-Count': { description: "Number of the account's devices matching `where`", schema: { type: 'integer' } } },
  })
  async findAll(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Query(new ParseFilterPipe(DEVICE_FILTER)) filter: ParsedFilter,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DeviceDto[]> {
    const page = await this.accounts.listDevices(id, filter);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Counts this account's devices matching `where` (not the whole collection). */
  @SerializeAs(200, countJson)
  @Get('count')
  @ApiWhereQuery()
  async count(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Query(new ParseWherePipe(DEVICE_FILTER)) where: MongoFilter,
  ): Promise<CountDto> {
    return { count: await this.accounts.countDevices(id, where) };
  }

  /** Creates a device and links it to the account. */
  @SerializeAs(201, DEVICE_JSON)
  @Post()
  @ApiErrors(409, 422)
  create(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.accounts.createDevice(id, dto);
  }

  /** Deletes this account's devices, and only those; each is removed from every account. */
  @SerializeAs(200, countJson)
  @Delete()
  @HttpCode(200)
  deleteAll(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<CountDto> {
    return this.accounts.deleteDevices(id);
  }

  /** Links several devices at once: all of them or, with a 422 naming the unknown ids, none. */
  @SerializeAs(200, ACCOUNT_JSON)
  @Post('rel')
  @HttpCode(200)
  @ApiErrors(422)
  linkMany(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: DeviceIdsDto): Promise<AccountDto> {
    return this.accounts.linkMany(id, dto.ids);
  }

  /** Replaces the whole relation with `ids`, in that order. */
  @SerializeAs(200, ACCOUNT_JSON)
  @Put('rel')
  @ApiErrors(422)
  replaceAll(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: DeviceIdsDto): Promise<AccountDto> {
    return this.accounts.replaceDevices(id, dto.ids);
  }

  /** Links a device to the account (idempotent: linking twice keeps one reference). */
  @SerializeAs(200, DEVICE_JSON)
  @Put('rel/:fk')
  @ApiParam(FK)
  @ApiErrors(422)
  link(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<DeviceDto> {
    return this.accounts.link(id, key);
  }

  /** Unlinks a device; the device itself stays. */
  @Delete('rel/:fk')
  @HttpCode(204)
  @ApiParam(FK)
  unlink(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    return this.accounts.unlink(id, key);
  }

  /** 200 when the device is linked to the account, 404 when it is not. */
  @Head('rel/:fk')
  @ApiParam(FK)
  async isLinked(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    await this.accounts.assertLinked(id, key);
  }

  /** A linked device (404 unless linked). */
  @SerializeAs(200, DEVICE_JSON)
  @Get(':fk')
  @ApiParam(FK)
  findOne(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<DeviceDto> {
    return this.accounts.findLinkedDevice(id, key);
  }

  /** Changes fields of a linked device (404 unless linked), as LoopBack's related updateById. */
  @SerializeAs(200, DEVICE_JSON)
  @Put(':fk')
  @ApiParam(FK)
  @ApiErrors(409)
  update(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Param('fk', ParseDeviceKeyPipe) key: DeviceKey,
    @Body() dto: UpdateDeviceDto,
  ): Promise<DeviceDto> {
    return this.accounts.updateLinkedDevice(id, key, dto);
  }

  /** Destroys a linked device (404 unless linked); it is removed from every account. */
  @SerializeAs(200, countJson)
  @Delete(':fk')
  @HttpCode(200)
  @ApiParam(FK)
  remove(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<CountDto> {
    return this.accounts.removeLinkedDevice(id, key);
  }
}
