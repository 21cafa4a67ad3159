import { applyDecorators, SetMetadata } from '@nestjs/common';
import { DECORATORS } from '@nestjs/swagger';

export const IS_PUBLIC = 'refmany:public';

/**
 * Open without an API key and never rate limited: the health checks. The OpenAPI document
 * says so with an empty `security`, which also keeps the guards' 401, 403 and 429 off them.
 */
export const Public = () => applyDecorators(SetMetadata(IS_PUBLIC, true), SetMetadata(DECORATORS.API_SECURITY, []));
