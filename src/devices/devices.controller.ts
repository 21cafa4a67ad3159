import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { type DeviceKey } from './device-key.js';
import { DevicesService } from './devices.service.js';
import { CreateDeviceDto } from './dto/create-device.dto.js';
import { DeviceDto } from './dto/device.dto.js';
import { UpdateDeviceDto } from './dto/update-device.dto.js';
import { ParseDeviceKeyPipe } from './pipes/parse-device-key.pipe.js';

const DEVICE_ID = { name: 'id', description: 'The device ObjectId or its myId', example: 'thermostat-kitchen' };
const DEFAULT_PAGE = { skip: 0, limit: 100 };

@ApiTags('devices')
@ApiErrors(503)
@Controller('devices')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  /** Creates a device. */
  @Post()
  @ApiErrors(400, 409)
  create(@Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.devices.create(dto);
  }

  /** Lists devices in creation order; `X-Total-Count` gives the number of all of them. */
  @Get()
  @ApiOkResponse({ type: [DeviceDto], headers: { 'X-Total-Count': { description: 'Number of matching devices', schema: { type: 'integer' } } } })
  async findAll(@Res({ passthrough: true }) reply: FastifyReply): Promise<DeviceDto[]> {
    const page = await this.devices.findAll(DEFAULT_PAGE);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Reads one device. */
  @Get(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404)
  findOne(@Param('id', ParseDeviceKeyPipe) key: DeviceKey): Promise<DeviceDto> {
    return this.devices.findOne(key);
  }

  /** Changes some fields of a device. */
  @Patch(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404, 409)
  update(@Param('id', ParseDeviceKeyPipe) key: DeviceKey, @Body() dto: UpdateDeviceDto): Promise<DeviceDto> {
    return this.devices.update(key, dto);
  }

  /** Replaces every field of a device; its `_id` and the accounts referencing it stay. */
  @Put(':id')
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404, 409)
  replace(@Param('id', ParseDeviceKeyPipe) key: DeviceKey, @Body() dto: CreateDeviceDto): Promise<DeviceDto> {
    return this.devices.update(key, dto);
  }

  /** Deletes a device and pulls its id from every account that referenced it. */
  @Delete(':id')
  @HttpCode(200)
  @ApiParam(DEVICE_ID)
  @ApiErrors(400, 404)
  remove(@Param('id', ParseDeviceKeyPipe) key: DeviceKey): Promise<CountDto> {
    return this.devices.remove(key);
  }
}
