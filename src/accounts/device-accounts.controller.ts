import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { arrayOf, SerializeAs } from '../common/serialization/response-schema.js';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery } from '../common/decorators/api-filter.decorator.js';
import { ParseFilterPipe } from '../common/filter/filter.pipes.js';
import { type ParsedFilter } from '../common/filter/filter.types.js';
import { type DeviceKey } from '../devices/device-key.js';
import { ParseDeviceKeyPipe } from '../devices/pipes/parse-device-key.pipe.js';
import { ACCOUNT } from './account.shape.js';
import { AccountsService } from './accounts.service.js';
import { AccountDto } from './dto/account.dto.js';

/**
 * The reverse of the relation. It lives with accounts, not devices, because devices/ never
 * depends on accounts/ (STYLE.md, Layout).
 */
@ApiTags('devices')
@Controller('devices/:id/accounts')
export class DeviceAccountsController {
  constructor(private readonly accounts: AccountsService) {}

  /** The accounts that reference the device, filtered like GET /api/accounts. */
  @SerializeAs(200, arrayOf(ACCOUNT.json))
  @Get()
  @ApiParam({ name: 'id', description: 'The device ObjectId or its myId' })
  @ApiFilterQuery()
  @ApiOkResponse({
    type: [AccountDto],
    headers: { 'X-Total-Count': { description: 'Number of matching accounts', schema: { type: 'integer' } } },
  })
  @ApiErrors(400, 404, 503)
  async findAll(
    @Param('id', ParseDeviceKeyPipe) key: DeviceKey,
    @Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AccountDto[]> {
    const page = await this.accounts.referencing(key, filter);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }
}
