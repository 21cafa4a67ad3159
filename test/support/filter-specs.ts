import { Types } from 'mongoose';
import { AlternateKeyRef, type FilterSpec, type ReferenceReader } from '../../src/common/filter/filter.types.js';
import { isObjectIdString } from '../../src/common/pipes/parse-object-id.pipe.js';

/**
 * Two models for the filter language's own tests, in no feature's vocabulary, shaped as the
 * service's models are for the parser: items, named by an ObjectId or by their own `sku` (an
 * alternate key), and boxes that reference a list of items (`itemIds`) and may include them.
 */

/** A sku: letters, digits and . _ : -; never 24 hexadecimal characters, never a route word. */
const SKU = /^[A-Za-z0-9._:-]{1,128}$/;
const ROUTE_WORDS = ['count', 'findOne', 'exists', 'rel'];

const ITEM_REFERENCE: ReferenceReader = {
  rule: 'an item ObjectId or sku',
  read: (value) => {
    if (isObjectIdString(value)) return new Types.ObjectId(value);
    return typeof value === 'string' && SKU.test(value) && !ROUTE_WORDS.includes(value) ? new AlternateKeyRef(value) : undefined;
  },
};

export const ITEM_FILTER: FilterSpec = {
  fields: { _id: 'reference', sku: 'string', serial: 'string', createdAt: 'date', updatedAt: 'date' },
  reference: ITEM_REFERENCE,
};

export const BOX_FILTER: FilterSpec = {
  fields: { _id: 'objectId', name: 'string', itemIds: 'reference', createdAt: 'date', updatedAt: 'date' },
  relations: { items: ITEM_FILTER },
  reference: ITEM_REFERENCE,
};

/** The keys of a filter and of an include, for generated filters. */
export const FILTER_KEYS = ['where', 'fields', 'order', 'limit', 'skip', 'offset', 'include', 'relation', 'scope'];

/** The filter language's operators, and `options`, which goes with the pattern operators: keys for generated filters. */
export const OPERATORS = [
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'between',
  'inq',
  'nin',
  'exists',
  'like',
  'nlike',
  'ilike',
  'nilike',
  'regexp',
  'options',
];
