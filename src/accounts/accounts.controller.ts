import { Body, Controller, Delete, Get, Head, HttpCode, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { arrayOf, countJson, SerializeAs } from '../common/serialization/response-schema.js';
import { ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { type Types } from 'mongoose';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ApiFilterQuery, ApiWhereQuery } from '../common/decorators/api-filter.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ExistsDto } from '../common/dto/exists.dto.js';
import { ParseFilterPipe, ParseWherePipe } from '../common/filter/filter.pipes.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { ParseObjectIdPipe } from '../common/pipes/parse-object-id.pipe.js';
import { ACCOUNT } from './account.shape.js';
import { RelationField } from '../relations/relation-field.interceptor.js';
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
const TOTAL = {
  'X-Total-Count': { description: 'Number of accounts matching `where`, ignoring limit and skip', schema: { type: 'integer' } },
};

@ApiTags('accounts')
@ApiErrors(503)
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  /** Creates an account; every device in `deviceIds` must exist (ObjectId or myId). */
  @SerializeAs(201, ACCOUNT.json)
  @Post()
  @ApiErrors(400, 422)
  @RelationField('deviceIds')
  create(@Body() dto: CreateAccountDto): Promise<AccountDto> {
    return this.accounts.create(dto);
  }

  /** Lists accounts matching the filter; `where: { deviceIds: id }` finds those holding a device. */
  @SerializeAs(200, arrayOf(ACCOUNT.json))
  @Get()
  @ApiFilterQuery()
  @ApiQuery(INCLUDE)
  @ApiOkResponse({ type: [AccountDto], headers: TOTAL })
  @ApiErrors(400)
  async findAll(
    @Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AccountDto[]> {
    const page = await this.accounts.findAll(filter);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Counts the accounts matching `where`. */
  @SerializeAs(200, countJson)
  @Get('count')
  @ApiWhereQuery()
  @ApiErrors(400)
  async count(@Query(new ParseWherePipe(ACCOUNT.filter)) where: MongoFilter): Promise<CountDto> {
    return { count: await this.accounts.count(where) };
  }

  /** The first account matching the filter. */
  @SerializeAs(200, ACCOUNT.json)
  @Get('findOne')
  @ApiFilterQuery()
  @ApiQuery(INCLUDE)
  @ApiErrors(400, 404)
  findFirst(@Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter): Promise<AccountDto> {
    return this.accounts.findFirst(filter);
  }

  /** Reads one account; `include=devices` adds its devices in `deviceIds` order. */
  @SerializeAs(200, ACCOUNT.json)
  @Get(':id')
  @ApiFilterQuery(' Only fields and include apply here.')
  @ApiQuery(INCLUDE)
  @ApiErrors(400, 404)
  findOne(
    @Param('id', ParseObjectIdPipe) id: Types.ObjectId,
    @Query(new ParseFilterPipe(ACCOUNT.filter)) filter: ParsedFilter,
  ): Promise<AccountDto> {
    return this.accounts.findOne(id, filter);
  }

  /** 200 when the account exists, 404 when it does not. */
  @Head(':id')
  @ApiErrors(400, 404)
  async head(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<void> {
    await this.accounts.assertExists(id);
  }

  /** Whether the account exists. */
  @Get(':id/exists')
  @ApiErrors(400)
  async exists(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<ExistsDto> {
    return { exists: await this.accounts.exists(id) };
  }

  /** Changes some fields; a given `deviceIds` replaces the whole relation. */
  @SerializeAs(200, ACCOUNT.json)
  @Patch(':id')
  @ApiErrors(400, 404, 422)
  @RelationField('deviceIds')
  update(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: UpdateAccountDto): Promise<AccountDto> {
    return this.accounts.update(id, dto);
  }

  /** Replaces the account; without `deviceIds` the relation is emptied. */
  @SerializeAs(200, ACCOUNT.json)
  @Put(':id')
  @ApiErrors(400, 404, 422)
  @RelationField('deviceIds')
  replace(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: CreateAccountDto): Promise<AccountDto> {
    return this.accounts.replace(id, dto);
  }

  /** Deletes the account; the devices it referenced stay. */
  @SerializeAs(200, countJson)
  @Delete(':id')
  @HttpCode(200)
  @ApiErrors(400, 404)
  remove(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<CountDto> {
    return this.accounts.remove(id);
  }
}
