import { Controller, Delete, Get, Head, HttpCode, Param, Put, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { type Types } from 'mongoose';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ParseObjectIdPipe } from '../common/pipes/parse-object-id.pipe.js';
import { type DeviceKey } from '../devices/device-key.js';
import { DeviceDto } from '../devices/dto/device.dto.js';
import { ParseDeviceKeyPipe } from '../devices/pipes/parse-device-key.pipe.js';
import { AccountsService } from './accounts.service.js';

const FK = { name: 'fk', description: 'The device ObjectId or its myId', example: 'thermostat-kitchen' };
const DEFAULT_PAGE = { skip: 0, limit: 100 };

/** The referencesMany relation of an account to its devices. */
@ApiTags('account devices')
@ApiParam({ name: 'id', description: 'The account ObjectId' })
@ApiErrors(400, 404, 503)
@Controller('accounts/:id/devices')
export class AccountDevicesController {
  constructor(private readonly accounts: AccountsService) {}

  /** The account's devices in reference order. `X-Total-Count` gives how many it references. */
  @Get()
  @ApiOkResponse({ type: [DeviceDto], headers: { 'X-Total-Count': { description: "Number of the account's devices", schema: { type: 'integer' } } } })
  async findAll(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Res({ passthrough: true }) reply: FastifyReply): Promise<DeviceDto[]> {
    const page = await this.accounts.listDevices(id, DEFAULT_PAGE);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Links a device to the account (idempotent: linking twice keeps one reference). */
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
  exists(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Param('fk', ParseDeviceKeyPipe) key: DeviceKey): Promise<void> {
    return this.accounts.assertLinked(id, key);
  }
}
