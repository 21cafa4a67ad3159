import { applyDecorators } from '@nestjs/common';
import { ApiQuery } from '@nestjs/swagger';

const LANGUAGE =
  'LoopBack filter as JSON, e.g. {"where":{"myId":{"like":"^therm"}},"order":"createdAt DESC","limit":20}, or in bracket form (filter[where][myId]=x&filter[limit]=20). ' +
  'Keys: where, fields, order, limit (1–1000, default 100), skip/offset, include. Operators: neq, gt, gte, lt, lte, between, inq, nin, like, nlike, ilike, nilike, regexp, exists, and, or.';

/** Documents `?filter=` on a route. */
export function ApiFilterQuery(extra = ''): MethodDecorator {
  return applyDecorators(ApiQuery({ name: 'filter', required: false, type: String, description: `${LANGUAGE}${extra}` }));
}

/** Documents `?where=` on a count route. */
export function ApiWhereQuery(): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'where',
      required: false,
      type: String,
      description: 'LoopBack where clause as JSON, e.g. {"name":{"like":"^Kit"}}, or in bracket form (where[name]=Kitchen).',
    }),
  );
}
