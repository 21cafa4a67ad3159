import { PartialType } from '@nestjs/swagger';
import { CreateAccountDto } from './create-account.dto.js';

// A field may be left out, but not set to null: null is validated like any other value.
export class UpdateAccountDto extends PartialType(CreateAccountDto, { skipNullProperties: false }) {}
