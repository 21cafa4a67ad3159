import { Body, Controller, Delete, Get, Head, HttpCode, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import { type Types } from 'mongoose';
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
import { ACCOUNT } from './account.shape.js';
import {
  ACCOUNT_FILTER_EXAMPLES,
  ACCOUNT_NAMED,
  ACCOUNT_NOT_FOUND,
  ACCOUNT_READ_EXAMPLES,
  ACCOUNT_UPDATE_WHERE_EXAMPLES,
  ACCOUNT_WHERE_EXAMPLES,
  AccountIdParam,
  NAME_EMPTY,
  NO_ACCOUNT_MATCHES,
  ListsDevices,
} from './accounts.openapi.js';
import { AccountsService } from './accounts.service.js';
import { AccountDto } from './dto/account.dto.js';
import { CreateAccountDto } from './dto/create-account.dto.js';
import { UpdateAccountDto } from './dto/update-account.dto.js';

const INCLUDE = {
  name: 'include',
  required: false,
  enum: ['devices'],
  description: "Shorthand for filter.include: adds each account's `devices`, in `deviceIds` order",
};

@ApiTags('accounts')
@ApiErrors(503)
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  /** Creates an account; every device in `deviceIds` must exist (ObjectId or myId). */
  @Post()
  @AnswersDocument(201, ACCOUNT.json, 'The new account')
  @ApiErrors(400, NAME_EMPTY)
  @ListsDevices('deviceIds')
  createAccount(@Body() dto: CreateAccountDto): Promise<AccountDto> {
    return this.accounts.create(dto);
  }

  /** Lists accounts matching the filter; `where: { deviceIds: id }` finds those holding a device. */
  @SerializeAs(200, arrayOf(ACCOUNT.json))
  @Get()
  @ApiFilterQuery(ACCOUNT_FILTER_EXAMPLES)
  @ApiQuery(INCLUDE)
  @ApiPageResponse(AccountDto, 'The matching accounts', 'Number of accounts matching `where`, ignoring limit and skip')
  findAccounts(@Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter): Promise<Page<AccountDto>> {
    return this.accounts.findAll(filter);
  }

  /** Counts the accounts matching `where`. */
  @Get('count')
  @ApiWhereQuery(ACCOUNT_WHERE_EXAMPLES)
  @Answers(200, countJson, 'How many accounts match')
  async countAccounts(@Query(new ParseWherePipe(ACCOUNT.filter)) where: MongoFilter): Promise<CountDto> {
    return { count: await this.accounts.count(where) };
  }

  /**
   * Changes the given fields of every account `where` matches (LoopBack's updateAll); a given
   * `deviceIds` replaces each one's relation, checked as in any write.
   */
  @Post('update')
  @HttpCode(200)
  @ApiBulkWhereQuery(ACCOUNT_UPDATE_WHERE_EXAMPLES)
  @Answers(200, countJson, 'How many accounts matched; each was changed')
  @ApiErrors(400, NAME_EMPTY)
  @ListsDevices('deviceIds')
  updateAllAccounts(@Query(new ParseBulkWherePipe(ACCOUNT.filter)) where: MongoFilter, @Body() dto: UpdateAccountDto): Promise<CountDto> {
    return this.accounts.updateAll(where, dto);
  }

  /** The first account matching the filter. */
  @Get('findOne')
  @ApiFilterQuery(ACCOUNT_FILTER_EXAMPLES)
  @ApiQuery(INCLUDE)
  @Answers(200, ACCOUNT.json, 'The first matching account')
  @ApiErrors(NO_ACCOUNT_MATCHES)
  findFirstAccount(@Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter): Promise<AccountDto> {
    return this.accounts.findFirst(filter);
  }

  /**
   * Reads one account; `include=devices` adds its devices in `deviceIds` order. Read whole
   * (no `fields`, no `include`), it carries its ETag, which is also the version of its relation.
   */
  @Get(':id')
  @ApiFilterQuery(ACCOUNT_READ_EXAMPLES, ' Only fields and include apply here.')
  @ApiQuery(INCLUDE)
  @Answers(200, ACCOUNT.json, 'The account')
  @ConditionalRead()
  @ApiErrors(ACCOUNT_NOT_FOUND)
  findAccount(@AccountIdParam() id: Types.ObjectId, @Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter): Promise<AccountDto> {
    return this.accounts.findOne(id, filter);
  }

  /** 200 when the account exists, 404 when it does not. */
  @Head(':id')
  @Responds(200, 'The account exists (no body)')
  @ApiErrors(ACCOUNT_NOT_FOUND)
  async headAccount(@AccountIdParam() id: Types.ObjectId): Promise<void> {
    await this.accounts.assertExists(id);
  }

  /** Whether the account exists. */
  @Get(':id/exists')
  @Responds(200, 'Whether the account exists')
  async accountExists(@AccountIdParam() id: Types.ObjectId): Promise<ExistsDto> {
    return { exists: await this.accounts.exists(id) };
  }

  /** Changes some fields; a given `deviceIds` replaces the whole relation. */
  @Patch(':id')
  @AnswersDocument(200, ACCOUNT.json, 'The account as changed')
  @ApiErrors(400, NAME_EMPTY, ACCOUNT_NOT_FOUND)
  @ListsDevices('deviceIds')
  updateAccount(
    @AccountIdParam() id: Types.ObjectId,
    @Body() dto: UpdateAccountDto,
    @IfMatch(ACCOUNT_NAMED) ifMatch?: EntityTagCondition,
  ): Promise<AccountDto> {
    return this.accounts.update(id, dto, ifMatch);
  }

  /** Replaces the account; without `deviceIds` the relation is emptied. */
  @Put(':id')
  @AnswersDocument(200, ACCOUNT.json, 'The account as replaced')
  @ApiErrors(400, NAME_EMPTY, ACCOUNT_NOT_FOUND)
  @ListsDevices('deviceIds')
  replaceAccount(
    @AccountIdParam() id: Types.ObjectId,
    @Body() dto: CreateAccountDto,
    @IfMatch(ACCOUNT_NAMED) ifMatch?: EntityTagCondition,
  ): Promise<AccountDto> {
    return this.accounts.replace(id, dto, ifMatch);
  }

  /** Deletes the account; the devices it referenced stay. */
  @Delete(':id')
  @HttpCode(200)
  @Answers(200, countJson, 'Deleted: `count` is 1')
  @ApiErrors(ACCOUNT_NOT_FOUND)
  deleteAccount(@AccountIdParam() id: Types.ObjectId, @IfMatch(ACCOUNT_NAMED) ifMatch?: EntityTagCondition): Promise<CountDto> {
    return this.accounts.remove(id, ifMatch);
  }
}
