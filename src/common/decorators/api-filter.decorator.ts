import { applyDecorators } from '@nestjs/common';
import { ApiQuery, type ExampleObject } from '@nestjs/swagger';
import { ALL_NOT_BOOLEAN, WHERE_REQUIRED } from '../filter/filter.pipes.js';
import { fieldError } from '../openapi/error-example.js';
import { ApiErrors } from './api-errors.decorator.js';

const LANGUAGE =
  'LoopBack filter as JSON, or in bracket form (filter[where][name]=x&filter[limit]=20). ' +
  'Keys: where, fields, order, limit (1–1000, default 100), skip/offset, include. Operators: neq, gt, gte, lt, lte, between, inq, nin, like, nlike, ilike, nilike, regexp, exists, and, or.';

// A JSON text, not an object: typed as a string, Swagger UI sends what is typed and a
// generated client takes the JSON the service reads.
const JSON_TEXT = { type: 'string' } as const;

const notJson = (key: string) =>
  fieldError(400, `${key}NotJson`, key, 'invalid_json', `${key}: must be JSON or LoopBack bracket notation (${key}[key]=value)`);
const LIMIT_OUT_OF_RANGE = fieldError(
  400,
  'limitOutOfRange',
  'filter.limit',
  'out_of_range',
  'filter.limit: must be an integer from 1 to 1000',
);

/** Documents `?filter=` on a route, with the model's examples, and how it fails. */
export function ApiFilterQuery(examples: Record<string, ExampleObject>, extra = ''): MethodDecorator {
  return applyDecorators(
    ApiQuery({ name: 'filter', required: false, schema: JSON_TEXT, description: `${LANGUAGE}${extra}`, examples }),
    ApiErrors(notJson('filter'), LIMIT_OUT_OF_RANGE),
  );
}

/** Documents `?where=` on a count route, with the model's examples, and how it fails. */
export function ApiWhereQuery(examples: Record<string, ExampleObject>, extra = ''): MethodDecorator {
  return applyDecorators(
    ApiQuery({
      name: 'where',
      required: false,
      schema: JSON_TEXT,
      description: `LoopBack where clause as JSON, or in bracket form (where[name]=Kitchen).${extra}`,
      examples,
    }),
    ApiErrors(notJson('where')),
  );
}

/** Documents `?where=` and `?all=` of a write of many documents (ParseBulkWherePipe), and how they fail. */
export function ApiBulkWhereQuery(examples: Record<string, ExampleObject>): MethodDecorator {
  return applyDecorators(
    ApiWhereQuery(examples, ' Required, unless all=true.'),
    ApiQuery({
      name: 'all',
      required: false,
      schema: { type: 'boolean' },
      description: 'true: without a where, write every document (refused otherwise, so that it never happens by mistake)',
    }),
    ApiErrors(WHERE_REQUIRED, ALL_NOT_BOOLEAN),
  );
}
