import { Body, Controller, Delete, Get, Head, HttpCode, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { Answers, AnswersDocument } from '../common/decorators/answers.decorator.js';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiBulkWhereQuery, ApiFilterQuery, ApiWhereQuery } from '../common/decorators/api-filter.decorator.js';
import { Responds } from '../common/decorators/responds.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ExistsDto } from '../common/dto/exists.dto.js';
import { ParseBulkWherePipe, ParseFilterPipe, ParseWherePipe } from '../common/filter/filter.pipes.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type EntityTagCondition } from '../common/http/entity-tags.js';
import { ConditionalRead, IfMatch } from '../common/interceptors/entity-tag.interceptor.js';
import { ApiPageResponse } from '../common/interceptors/total-count.interceptor.js';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
import { type DeviceKey } from './device-key.js';
import { DEVICE } from './device.shape.js';
import {
  DEVICE_FILTER_EXAMPLES,
  DEVICE_NOT_FOUND,
  DEVICE_READ_EXAMPLES,
  DEVICE_UPDATE_WHERE_EXAMPLES,
  DEVICE_WHERE_EXAMPLES,
  DeviceKeyParam,
  EXAMPLE_MY_ID,
  MY_ID_ON_MANY,
  MY_ID_RESERVED,
  MY_ID_TAKEN,
  NO_DEVICE_MATCHES,
} from './devices.openapi.js';
import { DevicesService } from './devices.service.js';
import { CreateDeviceDto } from './dto/create-device.dto.js';
import { DeviceDto } from './dto/device.dto.js';
import { UpdateDeviceDto } from './dto/update-device.dto.js';

const DEVICE_NAMED = `Device ${EXAMPLE_MY_ID}`;
/** What PATCH and PUT of a device can answer besides the device. */
const DEVICE_WRITE_ERRORS = [400, MY_ID_RESERVED, DEVICE_NOT_FOUND, MY_ID_TAKEN];

@ApiTags('devices')
@ApiErrors(503)
@Controller('devices')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  /** Creates a device. */
  @Post()
  @AnswersDocument(201, DEVICE.json, 'The new device')
  @ApiErrors(400, MY_ID_RESERVED, MY_ID_TAKEN)
  createDevice(@Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.devices.create(dto);
  }

  /** Lists devices matching the filter (default: creation order, 100 at a time). */
  @SerializeAs(200, arrayOf(DEVICE.json))
  @Get()
  @ApiFilterQuery(DEVICE_FILTER_EXAMPLES)
  @ApiPageResponse(DeviceDto, 'The matching devices', 'Number of devices matching `where`, ignoring limit and skip')
  findDevices(@Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter): Promise<Page<DeviceDto>> {
    return this.devices.findAll(filter);
  }

  /** Counts the devices matching `where`. */
  @Get('count')
  @ApiWhereQuery(DEVICE_WHERE_EXAMPLES)
  @Answers(200, countJson, 'How many devices match')
  async countDevices(@Query(new ParseWherePipe(DEVICE.filter)) where: MongoFilter): Promise<CountDto> {
    return { count: await this.devices.count(where) };
  }

  /**
   * Changes the given fields of every device `where` matches (LoopBack's updateAll). A myId or
   * deviceUID can go to one device only: if two match, 409 and nothing changes.
   */
  @Post('update')
  @HttpCode(200)
  @ApiBulkWhereQuery(DEVICE_UPDATE_WHERE_EXAMPLES)
  @Answers(200, countJson, 'How many devices matched; each was changed')
  @ApiErrors(400, MY_ID_RESERVED, MY_ID_TAKEN, MY_ID_ON_MANY)
  updateAllDevices(@Query(new ParseBulkWherePipe(DEVICE.filter)) where: MongoFilter, @Body() dto: UpdateDeviceDto): Promise<CountDto> {
    return this.devices.updateAll(where, dto);
  }

  /** The first device matching the filter. */
  @Get('findOne')
  @ApiFilterQuery(DEVICE_FILTER_EXAMPLES)
  @Answers(200, DEVICE.json, 'The first matching device')
  @ApiErrors(NO_DEVICE_MATCHES)
  findFirstDevice(@Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter): Promise<DeviceDto> {
    return this.devices.findFirst(filter);
  }

  /** Reads one device; `filter.fields` picks its fields. Read whole, it carries its ETag. */
  @Get(':id')
  @ApiFilterQuery(DEVICE_READ_EXAMPLES, ' Only fields applies here.')
  @Answers(200, DEVICE.json, 'The device')
  @ConditionalRead()
  @ApiErrors(DEVICE_NOT_FOUND)
  findDevice(@DeviceKeyParam('id') key: DeviceKey, @Query(new ParseFilterPipe(DEVICE.filter)) filter: ParsedFilter): Promise<DeviceDto> {
    return this.devices.findOne(key, filter.fields);
  }

  /** 200 when the device exists, 404 when it does not. */
  @Head(':id')
  @Responds(200, 'The device exists (no body)')
  @ApiErrors(DEVICE_NOT_FOUND)
  async headDevice(@DeviceKeyParam('id') key: DeviceKey): Promise<void> {
    await this.devices.findOne(key, { _id: 1 });
  }

  /** Whether the device exists. */
  @Get(':id/exists')
  @Responds(200, 'Whether the device exists')
  async deviceExists(@DeviceKeyParam('id') key: DeviceKey): Promise<ExistsDto> {
    return { exists: await this.devices.exists(key) };
  }

  /** Changes some fields of a device. */
  @Patch(':id')
  @AnswersDocument(200, DEVICE.json, 'The device as changed')
  @ApiErrors(...DEVICE_WRITE_ERRORS)
  updateDevice(
    @DeviceKeyParam('id') key: DeviceKey,
    @Body() dto: UpdateDeviceDto,
    @IfMatch(DEVICE_NAMED) ifMatch?: EntityTagCondition,
  ): Promise<DeviceDto> {
    return this.devices.update(key, dto, ifMatch);
  }

  /** Replaces every field of a device; its `_id` and the accounts referencing it stay. */
  @Put(':id')
  @AnswersDocument(200, DEVICE.json, 'The device as replaced')
  @ApiErrors(...DEVICE_WRITE_ERRORS)
  replaceDevice(
    @DeviceKeyParam('id') key: DeviceKey,
    @Body() dto: CreateDeviceDto,
    @IfMatch(DEVICE_NAMED) ifMatch?: EntityTagCondition,
  ): Promise<DeviceDto> {
    return this.devices.update(key, dto, ifMatch);
  }

  /** Deletes a device and pulls its id from every account that referenced it. */
  @Delete(':id')
  @HttpCode(200)
  @Answers(200, countJson, 'Deleted: `count` is 1')
  @ApiErrors(DEVICE_NOT_FOUND)
  deleteDevice(@DeviceKeyParam('id') key: DeviceKey, @IfMatch(DEVICE_NAMED) ifMatch?: EntityTagCondition): Promise<CountDto> {
    return this.devices.remove(key, ifMatch);
  }
}
