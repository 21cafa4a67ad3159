import { Body, Controller, Delete, Get, Head, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
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
import { DEVICE } from '../devices/device.shape.js';
import { DevicesService } from '../devices/devices.service.js';
import { InjectRelation } from '../relations/references-many.module.js';
import { type ReferencesMany } from '../relations/references-many.js';
import { RelationField } from '../relations/relation-field.interceptor.js';
import { ACCOUNT_DEVICES } from './account-devices.relation.js';
import { ACCOUNT } from './account.shape.js';
import { CreateDeviceDto } from '../devices/dto/create-device.dto.js';
import { DeviceDto } from '../devices/dto/device.dto.js';
import { UpdateDeviceDto } from '../devices/dto/update-device.dto.js';
import { ParseDeviceKeyPipe } from '../devices/pipes/parse-device-key.pipe.js';
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
  constructor(
    @InjectRelation(ACCOUNT_DEVICES.name) private readonly relation: ReferencesMany<AccountDto, DeviceDto>,
    private readonly devices: DevicesService,
  ) {}

  /** The account's devices, in reference order unless `order` says otherwise. */
  @SerializeAs(200, arrayOf(DEVICE.json))
  @Get()
  @ApiFilterQuery()
  @ApiOkResponse({
    type: [DeviceDto],
    headers: { 'X-Total-Count': { description: "Number of the account's devices matching `where`", schema: { type: 'integer' } } },
  })
  async findAll(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DeviceDto[]> {
    const page = await this.relation.page(id, filter);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Counts this account's devices matching `where` (not the whole collection). */
  @SerializeAs(200, countJson)
  @Get('count')
  @ApiWhereQuery()
  async count(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Query(new ParseWherePipe(DEVICE.filter)) where: MongoFilter,
  ): Promise<CountDto> {
    return { count: await this.relation.count(id, where) };
  }

  /** Creates a device and links it to the account. */
  @SerializeAs(201, DEVICE.json)
  @Post()
  @ApiErrors(409, 422)
  @RelationField('id')
  create(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.relation.createLinked(id, () => this.devices.create(dto));
  }

  /** Deletes this account's devices, and only those; each is removed from every account. */
  @SerializeAs(200, countJson)
  @Delete()
  @HttpCode(200)
  deleteAll(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<CountDto> {
    return this.relation.deleteLinked(id);
  }

  /** Links several devices at once: all of them or, with a 422 naming the unknown ids, none. */
  @SerializeAs(200, ACCOUNT.json)
  @Post('rel')
  @HttpCode(200)
  @ApiErrors(422)
  @RelationField('ids')
  linkMany(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: DeviceIdsDto): Promise<AccountDto> {
    return this.relation.linkMany(id, dto.ids);
  }

  /** Replaces the whole relation with `ids`, in that order. */
  @SerializeAs(200, ACCOUNT.json)
  @Put('rel')
  @ApiErrors(422)
  @RelationField('ids')
  replaceAll(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: DeviceIdsDto): Promise<AccountDto> {
    return this.relation.replace(id, dto.ids);
  }

  /** Links a device to the account (idempotent: linking twice keeps one reference). */
  @SerializeAs(200, DEVICE.json)
  @Put('rel/:fk')
  @ApiParam(FK)
  @ApiErrors(422)
  @RelationField('fk')
  link(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<DeviceDto> {
    return this.relation.link(id, key);
  }

  /** Unlinks a device; the device itself stays. */
  @Delete('rel/:fk')
  @HttpCode(204)
  @ApiParam(FK)
  unlink(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    return this.relation.unlink(id, key);
  }

  /** 200 when the device is linked to the account, 404 when it is not. */
  @Head('rel/:fk')
  @ApiParam(FK)
  async isLinked(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    await this.relation.assertLinked(id, key);
  }

  /** A linked device (404 unless linked). */
  @SerializeAs(200, DEVICE.json)
  @Get(':fk')
  @ApiParam(FK)
  async findOne(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<DeviceDto> {
    return this.devices.findOne({ _id: await this.relation.assertLinked(id, key) });
  }

  /** Changes fields of a linked device (404 unless linked), as LoopBack's related updateById. */
  @SerializeAs(200, DEVICE.json)
  @Put(':fk')
  @ApiParam(FK)
  @ApiErrors(409)
  async update(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Param('fk', ParseDeviceKeyPipe) key: DeviceKey,
    @Body() dto: UpdateDeviceDto,
  ): Promise<DeviceDto> {
    return this.devices.update({ _id: await this.relation.assertLinked(id, key) }, dto);
  }

  /** Destroys a linked device (404 unless linked); it is removed from every account. */
  @SerializeAs(200, countJson)
  @Delete(':fk')
  @HttpCode(200)
  @ApiParam(FK)
  async remove(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<CountDto> {
    return this.devices.remove({ _id: await this.relation.assertLinked(id, key) });
  }
}
