import { Controller, Get, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery } from '../common/decorators/api-filter.decorator.js';
import { ParseFilterPipe } from '../common/filter/filter.pipes.js';
import { type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { ApiPageResponse } from '../common/interceptors/total-count.interceptor.js';
import { arrayOf, SerializeAs } from '../common/serialization/response-schema.js';
import { type DeviceKey } from '../devices/device-key.js';
import { DEVICE_NOT_FOUND, DeviceKeyParam } from '../devices/devices.openapi.js';
import { ACCOUNT } from './account.shape.js';
import { ACCOUNT_FILTER_EXAMPLES } from './accounts.openapi.js';
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
  @ApiFilterQuery(ACCOUNT_FILTER_EXAMPLES)
  @ApiPageResponse(AccountDto, 'The matching accounts that reference the device', 'Number of matching accounts')
  @ApiErrors(DEVICE_NOT_FOUND, 503)
  findDeviceAccounts(
    @DeviceKeyParam('id') key: DeviceKey,
    @Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter,
  ): Promise<Page<AccountDto>> {
    return this.accounts.referencing(key, filter);
  }
}
