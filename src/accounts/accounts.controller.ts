import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { type Types } from 'mongoose';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { CountDto } from '../common/dto/count.dto.js';
import { ParseObjectIdPipe } from '../common/pipes/parse-object-id.pipe.js';
import { AccountsService } from './accounts.service.js';
import { AccountQueryDto } from './dto/account-query.dto.js';
import { AccountDto } from './dto/account.dto.js';
import { CreateAccountDto } from './dto/create-account.dto.js';
import { UpdateAccountDto } from './dto/update-account.dto.js';

const DEFAULT_PAGE = { skip: 0, limit: 100 };

@ApiTags('accounts')
@ApiErrors(503)
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  /** Creates an account; every device in `deviceIds` must exist (ObjectId or myId). */
  @Post()
  @ApiErrors(400, 422)
  create(@Body() dto: CreateAccountDto): Promise<AccountDto> {
    return this.accounts.create(dto);
  }

  /** Lists accounts; `include=devices` adds each account's devices. `X-Total-Count` gives the number of all of them. */
  @Get()
  @ApiOkResponse({ type: [AccountDto], headers: { 'X-Total-Count': { description: 'Number of matching accounts', schema: { type: 'integer' } } } })
  @ApiErrors(400)
  async findAll(@Query() query: AccountQueryDto, @Res({ passthrough: true }) reply: FastifyReply): Promise<AccountDto[]> {
    const page = await this.accounts.findAll(DEFAULT_PAGE, query);
    reply.header('X-Total-Count', page.total);
    return page.items;
  }

  /** Reads one account; `include=devices` adds its devices in `deviceIds` order. */
  @Get(':id')
  @ApiErrors(400, 404)
  findOne(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Query() query: AccountQueryDto): Promise<AccountDto> {
    return this.accounts.findOne(id, query);
  }

  /** Changes some fields; a given `deviceIds` replaces the whole relation. */
  @Patch(':id')
  @ApiErrors(400, 404, 422)
  update(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: UpdateAccountDto): Promise<AccountDto> {
    return this.accounts.update(id, dto);
  }

  /** Replaces the account; without `deviceIds` the relation is emptied. */
  @Put(':id')
  @ApiErrors(400, 404, 422)
  replace(@Param('id', ParseObjectIdPipe) id: Types.ObjectId, @Body() dto: CreateAccountDto): Promise<AccountDto> {
    return this.accounts.replace(id, dto);
  }

  /** Deletes the account; the devices it referenced stay. */
  @Delete(':id')
  @HttpCode(200)
  @ApiErrors(400, 404)
  remove(@Param('id', ParseObjectIdPipe) id: Types.ObjectId): Promise<CountDto> {
    return this.accounts.remove(id);
  }
}
