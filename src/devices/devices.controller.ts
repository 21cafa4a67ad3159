import { Body, Controller, Delete, Get, Head, HttpCode, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery, ApiWhereQuery } from '../common/decorators/api-filter.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ExistsDto } from '../common/dto/exists.dto.js';
import { ParseFilterPipe, ParseWherePipe } from '../common/filter/filter.pipes.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type DeviceKey } from './device-key.js';
import { DEVICE } from './device.shape.js';
import { DevicesService } from './devices.service.js';
import { CreateDeviceDto } from './dto/create-device.dto.js';
import { DeviceDto } from './dto/device.dto.js';
import { UpdateDeviceDto } from './dto/update-device.dto.js';
import { ParseDeviceKeyPipe } from './pipes/parse-device-key.pipe.js';

const DEVICE_ID = { name: 'id', description: 'The device ObjectId or its myId', example: 'thermostat-kitchen' };
const TOTAL = {
  'X-Total-Count': { description: 'Number of devices matching `where`, ignoring limit and skip', schema: { type: 'integer' } },
};

@ApiTags('devices')
@ApiErrors(503)
@Controller('devices')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  /** Creates a device. */
  @SerializeAs(201, DEVICE.json)
  @Post()
  @ApiErrors(400, 409)
  create(@Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.devices.create(dto);
  }

  /** Lists devices matching the filter (default: creation order, 100 at a time). */
  @SerializeAs(200, arrayOf(DEVICE.json))
  @Get()
  @ApiFilterQuery()
  @ApiOkResponse({ type: [DeviceDto], headers: TOTAL })
  @ApiErrors(400)
  async findAll(
    @Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DeviceDto[]> {
    const page = await this.devices.findAll(filter);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Counts the devices matching `where`. */
  @SerializeAs(200, countJson)
  @Get('count')
  @ApiWhereQuery()
  @ApiErrors(400)
  async count(@Query(new ParseWherePipe(DEVICE.filter)) where: MongoFilter): Promise<CountDto> {
    return { count: await this.devices.count(where) };
  }

  /** The first device matching the filter. */
  @SerializeAs(200, DEVICE.json)
  @Get('findOne')
  @ApiFilterQuery()
  @ApiErrors(400, 404)
  findFirst(@Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter): Promise<DeviceDto> {
    return this.devices.findFirst(filter);
  }

  /** Reads one device; `filter.fields` picks its fields. */
  @SerializeAs(200, DEVICE.json)
  @Get(':id')
  @ApiParam(DEVICE_ID)
  @ApiFilterQuery()
  @ApiErrors(400, 404)
  findOne(
    @Param('id', ParseDeviceKeyPipe) key: DeviceKey,
    @Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter,
  ): Promise<DeviceDto> {
    return this.devices.findOne(key, filter.fields);
  }

  /** 200 when the device exists, 404 when it does not. */
  @Head(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404)
  async head(@Param('id', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    await this.devices.findOne(key, { _id: 1 });
  }

  /** Whether the device exists. */
  @Get(':id/exists')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400)
  async exists(@Param('id', ParseDeviceKeyPipe) key: DeviceKey): Promise<ExistsDto> {
    return { exists: await this.devices.exists(key) };
  }

  /** Changes some fields of a device. */
  @SerializeAs(200, DEVICE.json)
  @Patch(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404, 409)
  update(@Param('id', ParseDeviceKeyPipe) key: DeviceKey, @Body() dto: UpdateDeviceDto): Promise<DeviceDto> {
    return this.devices.update(key, dto);
  }

  /** Replaces every field of a device; its `_id` and the accounts referencing it stay. */
  @SerializeAs(200, DEVICE.json)
  @Put(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404, 409)
  replace(@Param('id', ParseDeviceKeyPipe) key: DeviceKey, @Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.devices.update(key, dto);
  }

  /** Deletes a device and pulls its id from every account that referenced it. */
  @SerializeAs(200, countJson)
  @Delete(':id')
  @HttpCode(200)
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404)
  remove(@Param('id', ParseDeviceKeyPipe) key: DeviceKey): Promise<CountDto> {
    return this.devices.remove(key);
  }
}
