import { describe, expect, it } from '@jest/globals';
import { HttpException } from '@nestjs/common';
import fc from 'fast-check';
import { BOX_FILTER, FILTER_KEYS, ITEM_FILTER, OPERATORS } from '../../../test/support/filter-specs.js';
import { parseFilter, parseWhere } from './filter.parser.js';
import { type FilterSpec } from './filter.types.js';

/** The operators the translator itself emits; no other `$` key may appear in its output. */
const EMITTED = new Set(['$and', '$or', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$regex', '$options', '$not', '$exists']);

/** Seeds every property runs with, so a run is reproducible; one more run per property is unseeded. */
const SEEDS = [1, 42, 1337, 20240601, 987654321];
const SEEDED_RUNS = 100;
const RANDOM_RUNS = 300;

/** Names the translator knows, names it must refuse, and names that live on Object.prototype. */
const KEY_POOL = [
  ...FILTER_KEYS,
  '_id',
  'sku',
  'serial',
  'name',
  'itemIds',
  'items',
  'createdAt',
  'updatedAt',
  'and',
  'or',
  ...OPERATORS,
  '$where',
  '$gt',
  '$ne',
  '$regex',
  '$expr',
  '$function',
  '$or',
  '$in',
  '$lookup',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '0',
  '',
  ' ',
  'a.b',
  'name.$',
];

const VALUE_POOL = [
  'items',
  'name',
  'name ASC',
  'createdAt DESC',
  'toString ASC',
  'valueOf',
  'sku,serial',
  '0123456789abcdef01234567',
  'fedcba9876543210FEDCBA98',
  'sensor-1',
  'count',
  'has space',
  '/^a.*$/i',
  '/(/',
  '(a+)+$',
  '.*',
  'i',
  'ims',
  'g',
  'x',
  'true',
  'false',
  '1',
  '0',
  '-1',
  '1000',
  '1001',
  '2024-01-01T00:00:00.000Z',
  'not-a-date',
  '$where',
  '__proto__',
];

const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KEY_POOL) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }).map((rest) => `$${rest}`) },
);

const leaf = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<unknown>(...VALUE_POOL) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 2000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 1,
    arbitrary: fc.date({ noInvalidDate: false }).map((date) => (Number.isNaN(date.getTime()) ? 'Invalid' : date.toISOString())),
  },
);

/**
 * An object with the given entries as own data properties, as JSON.parse builds them (so a
 * `__proto__` key is a property, not the prototype), or without a prototype, as the
 * query-string parser builds them.
 */
function buildObject(entries: Array<[string, unknown]>, nullPrototype: boolean): Record<string, unknown> {
  const target: Record<string, unknown> = nullPrototype ? Object.create(null) : {};
  for (const [name, value] of entries) Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  return target;
}

/** Filter-shaped trees: plausible keys and values, nested objects and arrays, up to past the depth limit. */
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', maxDepth: 11 }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('tree'), { maxLength: 4 }),
  object: fc
    .tuple(fc.array(fc.tuple(key, tie('tree')), { maxLength: 5 }), fc.boolean())
    .map(([entries, nullPrototype]) => buildObject(entries as Array<[string, unknown]>, nullPrototype)),
}));

/** A whole `filter`: known top-level keys with tree values, so many inputs get past the first check. */
const filterLike = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom('where', 'fields', 'order', 'limit', 'skip', 'offset', 'include'), tree), { maxLength: 4 }),
    fc.boolean(),
  )
  .map(([entries, nullPrototype]) => buildObject(entries, nullPrototype));

/** A `where`: field and combinator keys with tree values. */
const whereLike = fc
  .tuple(
    fc.array(
      fc.tuple(fc.constantFrom('_id', 'sku', 'serial', 'name', 'itemIds', 'createdAt', 'and', 'or', 'toString', 'valueOf', '$where'), tree),
      { maxLength: 4 },
    ),
    fc.boolean(),
  )
  .map(([entries, nullPrototype]) => buildObject(entries, nullPrototype));

const anyInput = fc.oneof(
  { weight: 4, arbitrary: filterLike },
  { weight: 4, arbitrary: whereLike },
  { weight: 3, arbitrary: tree },
  { weight: 2, arbitrary: fc.jsonValue() },
  {
    weight: 1,
    arbitrary: fc.anything({
      withNullPrototype: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withSparseArray: true,
      withBigInt: true,
    }),
  },
  { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value ?? null))) },
);

type Parse = (input: unknown) => unknown;
const PARSERS: Array<[string, Parse]> = [
  ['parseFilter(x, BOX_FILTER)', (input) => parseFilter(input, BOX_FILTER)],
  ['parseFilter(x, ITEM_FILTER)', (input) => parseFilter(input, ITEM_FILTER)],
  ['parseWhere(x, ITEM_FILTER)', (input) => parseWhere(input, ITEM_FILTER)],
  ['parseWhere(x, BOX_FILTER)', (input) => parseWhere(input, BOX_FILTER)],
];

/**
 * The parse's result, or that it threw. With `strict`, a throw that is not an HttpException
 * with status 400 fails the property; otherwise the output properties below are checked on
 * whatever returns and throws are left to the first property.
 */
function outcome(parse: Parse, input: unknown, strict: boolean): { result?: unknown; rejected: boolean } {
  try {
    return { result: parse(input), rejected: false };
  } catch (error) {
    if (!strict) return { rejected: true };
    if (!(error instanceof HttpException))
      throw new Error(`threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, { cause: error });
    expect(error.getStatus()).toBe(400);
    return { rejected: true };
  }
}

const isWalkable = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

/** Every object reachable through arrays and plain objects, the root included. */
function objectsIn(value: unknown, found = new Set<object>()): Set<object> {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || found.has(value)) return found;
  found.add(value);
  if (Array.isArray(value)) value.forEach((item) => objectsIn(item, found));
  else if (isWalkable(value)) Object.values(value).forEach((item) => objectsIn(item, found));
  return found;
}

function dollarKeys(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((item) => dollarKeys(item, found));
  else if (isWalkable(value)) {
    for (const [name, item] of Object.entries(value)) {
      if (name.startsWith('$')) found.push(name);
      dollarKeys(item, found);
    }
  }
  return found;
}

/** Field names a result uses in `where` (outside `$` operators), `fields`, `order` and `include`. */
function namesUsed(result: unknown, spec: FilterSpec, isWhere: boolean): Array<{ name: string; allowed: readonly string[] }> {
  const own = Object.keys(spec.fields);
  const used: Array<{ name: string; allowed: readonly string[] }> = [];
  const walkWhere = (where: unknown) => {
    if (!isWalkable(where)) return;
    for (const [name, condition] of Object.entries(where)) {
      if (name === '$and' || name === '$or') (condition as unknown[]).forEach(walkWhere);
      else used.push({ name, allowed: own });
    }
  };
  if (isWhere) {
    walkWhere(result);
    return used;
  }
  const parsed = result as { where: unknown; fields?: object; order?: object; include: Array<{ relation: string; scope: unknown }> };
  walkWhere(parsed.where);
  for (const name of Object.keys(parsed.fields ?? {})) used.push({ name, allowed: own });
  for (const name of Object.keys(parsed.order ?? {})) used.push({ name, allowed: own });
  for (const include of parsed.include) {
    const relations = Object.keys(spec.relations ?? {});
    used.push({ name: include.relation, allowed: relations });
    if (relations.includes(include.relation)) used.push(...namesUsed(include.scope, spec.relations![include.relation], false));
  }
  return used;
}

const SPECS: Record<string, [FilterSpec, boolean]> = {
  'parseFilter(x, BOX_FILTER)': [BOX_FILTER, false],
  'parseFilter(x, ITEM_FILTER)': [ITEM_FILTER, false],
  'parseWhere(x, ITEM_FILTER)': [ITEM_FILTER, true],
  'parseWhere(x, BOX_FILTER)': [BOX_FILTER, true],
};

type Check = (name: string, result: unknown, inputObjects: Set<object>) => void;

/** Only the operators the translator emits appear as `$` keys in a result. */
const onlyEmittedOperators: Check = (name, result) => {
  for (const found of dollarKeys(result)) {
    if (!EMITTED.has(found)) throw new Error(`${name} emitted ${found}`);
  }
};

/** A result is built from new objects: nothing from the input is passed through. */
const noInputObjectReused: Check = (name, result, inputObjects) => {
  for (const object of objectsIn(result)) {
    if (inputObjects.has(object)) throw new Error(`${name} passed an input object through to its output`);
  }
};

/** Field and relation names in a result are the spec's own, never inherited from Object.prototype. */
const onlyOwnFieldNames: Check = (name, result) => {
  const [spec, isWhere] = SPECS[name];
  for (const { name: field, allowed } of namesUsed(result, spec, isWhere)) {
    if (!allowed.includes(field)) throw new Error(`${name} accepted "${field}", which is not one of ${allowed.join(', ')}`);
  }
};

/** Runs every parser on one input: each returns or throws a 400; a returned result passes `checks`. */
function checkAll(input: unknown, checks: Check[], strict: boolean): void {
  const inputObjects = objectsIn(input);
  for (const [name, parse] of PARSERS) {
    const { result, rejected } = outcome(parse, input, strict);
    if (!rejected) for (const check of checks) check(name, result, inputObjects);
  }
}

const PROPERTIES: Array<[string, Check[], boolean]> = [
  ['returns or throws an HttpException with status 400, never another error', [], true],
  ['emits no $ key but the operators it translates to', [onlyEmittedOperators], false],
  ['passes no object from its input through to its output', [noInputObjectReused], false],
  ["accepts only the spec's own field and relation names", [onlyOwnFieldNames], false],
];

describe.each(PROPERTIES)('filter parser property: %s', (_property, checks, strict) => {
  it.each(SEEDS)('holds for seed %d', (seed) => {
    fc.assert(
      fc.property(anyInput, (input) => checkAll(input, checks, strict)),
      { seed, numRuns: SEEDED_RUNS },
    );
  });

  it(`holds for ${RANDOM_RUNS} unseeded runs`, () => {
    fc.assert(
      fc.property(anyInput, (input) => checkAll(input, checks, strict)),
      { numRuns: RANDOM_RUNS },
    );
  });
});

describe('filter parser property inputs', () => {
  it('include a good share that parse, so the output checks are exercised', () => {
    const samples = fc.sample(anyInput, { seed: 7, numRuns: 400 });
    const accepted = samples.filter((input) => {
      try {
        parseFilter(input, BOX_FILTER);
        return true;
      } catch {
        return false;
      }
    });
    expect(accepted.length).toBeGreaterThan(20);
  });
});

function expectRejected(parse: () => unknown): void {
  let thrown: unknown;
  try {
    parse();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(HttpException);
  expect((thrown as HttpException).getStatus()).toBe(400);
}

/** Counterexamples found by the properties above, kept as explicit cases. */
describe('filter parser regressions', () => {
  it.each<[string, Parse, unknown]>([
    [
      'a where on "toString" with an operator object (bug: TypeError, a 500 over HTTP)',
      (x) => parseWhere(x, ITEM_FILTER),
      { toString: { gt: 1 } },
    ],
    ['a where on "valueOf" with an operator object (bug: TypeError)', (x) => parseWhere(x, BOX_FILTER), { valueOf: { neq: 'a' } }],
    [
      'the shrunk counterexample { valueOf: { where: "items" } } (bug: TypeError)',
      (x) => parseWhere(x, ITEM_FILTER),
      { valueOf: { where: 'items' } },
    ],
    [
      'a filter.where on "hasOwnProperty" with an operator object (bug: TypeError)',
      (x) => parseFilter(x, BOX_FILTER),
      { where: { hasOwnProperty: { exists: true } } },
    ],
    [
      'an include of "toString" with a scope where (bug: TypeError)',
      (x) => parseFilter(x, BOX_FILTER),
      { include: { relation: 'toString', scope: { where: { a: 1 } } } },
    ],
  ])('throws a 400, not another error, for %s', (_case, parse, input) => {
    expectRejected(() => parse(input));
  });

  it.each<[string, Parse, unknown]>([
    ['a where on "valueOf" (bug: Object.prototype names pass the field whitelist)', (x) => parseWhere(x, ITEM_FILTER), { valueOf: null }],
    [
      'a where on "toString" equal to null (bug: Object.prototype names pass the field whitelist)',
      (x) => parseWhere(x, ITEM_FILTER),
      { toString: null },
    ],
    ['a where on "toString" with a plain value (bug: accepted and silently dropped)', (x) => parseWhere(x, ITEM_FILTER), { toString: 'x' }],
    [
      'an order on "toString" (bug: Object.prototype names pass the field whitelist)',
      (x) => parseFilter(x, BOX_FILTER),
      { order: 'toString ASC' },
    ],
    [
      'fields naming "hasOwnProperty" (bug: Object.prototype names pass the field whitelist)',
      (x) => parseFilter(x, BOX_FILTER),
      { fields: ['hasOwnProperty'] },
    ],
    [
      'an include of "toString" (bug: Object.prototype names pass the relation whitelist)',
      (x) => parseFilter(x, BOX_FILTER),
      { include: 'toString' },
    ],
  ])('refuses with a 400 %s', (_case, parse, input) => {
    expectRejected(() => parse(input));
  });
});
