import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'refmany:public';

/** Open without an API key and never rate limited: the health checks. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
