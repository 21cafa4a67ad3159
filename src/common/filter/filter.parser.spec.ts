import { describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { Types } from 'mongoose';
import { BOX_FILTER, ITEM_FILTER } from '../../../test/support/filter-specs.js';
import { parseFilter, parseWhere, readQueryObject, refuseSuperLinearPatterns } from './filter.parser.js';
import { type PatternUse } from './filter.patterns.js';
import { type FilterSpec, AlternateKeyRef } from './filter.types.js';

const HEX = '0123456789abcdef01234567';
const HEX2 = 'fedcba9876543210fedcba98';
const oid = (hex = HEX) => new Types.ObjectId(hex);

/** The operators the translator itself emits; no other `$` key may appear in its output. */
const EMITTED = new Set(['$and', '$or', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$regex', '$options', '$not', '$exists']);

function dollarKeys(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((item) => dollarKeys(item, found));
  else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith('$')) found.push(key);
      dollarKeys(item, found);
    }
  }
  return found;
}

interface Detail {
  path: string;
  code: string;
  message: string;
}

/** The 400 a parse throws, with its body as the global filter receives it. */
function rejection(parse: () => unknown): { status: number; message: string; details: Detail[] } {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestException);
    const exception = error as BadRequestException;
    const body = exception.getResponse() as { message: string; details: Detail[] };
    return { status: exception.getStatus(), message: body.message, details: body.details };
  }
  throw new Error('expected the parse to be refused');
}

function expectRejected(parse: () => unknown, path: string, code: string) {
  const { status, message, details } = rejection(parse);
  expect(status).toBe(400);
  expect(details).toContainEqual({ path, code, message: expect.stringContaining(path) });
  expect(message).toContain(path);
  for (const detail of details) expect(Object.keys(detail).sort()).toEqual(['code', 'message', 'path']);
}

/** Nests `inner` in `levels` and-clauses: each level adds two to the depth (the list and its item). */
function nestedAnd(levels: number, inner: Record<string, unknown>): Record<string, unknown> {
  let where = inner;
  for (let level = 0; level < levels; level += 1) where = { and: [where] };
  return where;
}

describe('parseWhere (ITEM_FILTER)', () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['equality on a string', { sku: 'a' }, { sku: 'a' }],
    ['equality with null', { serial: null }, { serial: null }],
    ['neq', { sku: { neq: 'a' } }, { sku: { $ne: 'a' } }],
    ['neq null', { sku: { neq: null } }, { sku: { $ne: null } }],
    ['gt', { sku: { gt: 'a' } }, { sku: { $gt: 'a' } }],
    ['gte', { sku: { gte: 'a' } }, { sku: { $gte: 'a' } }],
    ['lt', { sku: { lt: 'z' } }, { sku: { $lt: 'z' } }],
    ['lte', { sku: { lte: 'z' } }, { sku: { $lte: 'z' } }],
    ['gt and lt together', { sku: { gt: 'a', lt: 'z' } }, { sku: { $gt: 'a', $lt: 'z' } }],
    ['between', { sku: { between: ['a', 'm'] } }, { sku: { $gte: 'a', $lte: 'm' } }],
    ['inq', { sku: { inq: ['a', 'b'] } }, { sku: { $in: ['a', 'b'] } }],
    ['nin', { serial: { nin: ['x'] } }, { serial: { $nin: ['x'] } }],
    ['an empty inq', { sku: { inq: [] } }, { sku: { $in: [] } }],
    ['exists true', { serial: { exists: true } }, { serial: { $exists: true } }],
    ['exists false', { serial: { exists: false } }, { serial: { $exists: false } }],
    ['exists "true" from the bracket form', { serial: { exists: 'true' } }, { serial: { $exists: true } }],
    ['exists "false" from the bracket form', { serial: { exists: 'false' } }, { serial: { $exists: false } }],
    ['like', { sku: { like: '^sen.or' } }, { sku: { $regex: '^sen.or', $options: '' } }],
    ['like with options i', { sku: { like: 'sensor', options: 'i' } }, { sku: { $regex: 'sensor', $options: 'i' } }],
    ['ilike', { sku: { ilike: 'Sensor' } }, { sku: { $regex: 'Sensor', $options: 'i' } }],
    ['ilike with options i (flag not doubled)', { sku: { ilike: 'x', options: 'i' } }, { sku: { $regex: 'x', $options: 'i' } }],
    ['nlike', { sku: { nlike: 'tmp' } }, { sku: { $not: /tmp/ } }],
    ['nilike', { sku: { nilike: 'TMP' } }, { sku: { $not: /TMP/i } }],
    ['nlike with options m', { sku: { nlike: '^a', options: 'm' } }, { sku: { $not: /^a/m } }],
    ['regexp as a plain pattern', { sku: { regexp: '^a+$' } }, { sku: { $regex: '^a+$', $options: '' } }],
    ['regexp as /pattern/flags', { sku: { regexp: '/^dev/i' } }, { sku: { $regex: '^dev', $options: 'i' } }],
    ['regexp dropping the g flag', { sku: { regexp: '/x/gi' } }, { sku: { $regex: 'x', $options: 'i' } }],
    ['regexp with a slash inside', { sku: { regexp: '/a\\/b/' } }, { sku: { $regex: 'a\\/b', $options: '' } }],
    ['and', { and: [{ sku: 'a' }, { serial: 'b' }] }, { $and: [{ sku: 'a' }, { serial: 'b' }] }],
    ['or', { or: [{ sku: 'a' }, { sku: { neq: 'b' } }] }, { $or: [{ sku: 'a' }, { sku: { $ne: 'b' } }] }],
    [
      'or inside and',
      { and: [{ or: [{ sku: 'a' }, { sku: 'b' }] }, { serial: { exists: true } }] },
      { $and: [{ $or: [{ sku: 'a' }, { sku: 'b' }] }, { serial: { $exists: true } }] },
    ],
    ['several fields side by side', { sku: 'a', serial: { neq: 'b' } }, { sku: 'a', serial: { $ne: 'b' } }],
  ])('translates %s', (_case, where, expected) => {
    expect(parseWhere(where, ITEM_FILTER)).toStrictEqual(expected);
  });

  it('gives an empty filter when where is absent', () => {
    expect(parseWhere(undefined, ITEM_FILTER)).toStrictEqual({});
  });

  it('reads an ObjectId in the _id position as an ObjectId', () => {
    expect(parseWhere({ _id: HEX }, ITEM_FILTER)).toStrictEqual({ _id: oid() });
  });

  it('reads a sku in the _id position as a AlternateKeyRef for the service to resolve', () => {
    const where = parseWhere({ _id: 'sensor-1' }, ITEM_FILTER);
    expect(where._id).toBeInstanceOf(AlternateKeyRef);
    expect((where._id as AlternateKeyRef).value).toBe('sensor-1');
  });

  it('reads a mixed inq of ObjectIds and skus on _id', () => {
    const where = parseWhere({ _id: { inq: [HEX, 'sensor-1'] } }, ITEM_FILTER);
    expect(where).toStrictEqual({ _id: { $in: [oid(), new AlternateKeyRef('sensor-1')] } });
    expect((where._id as { $in: unknown[] }).$in[0]).toBeInstanceOf(Types.ObjectId);
    expect((where._id as { $in: unknown[] }).$in[1]).toBeInstanceOf(AlternateKeyRef);
  });

  it.each<[string, unknown]>([
    ['an ISO 8601 string', '2024-03-01T10:00:00.000Z'],
    ['a date-only string', '2024-03-01'],
    ['milliseconds since 1970 as a number', Date.parse('2024-03-01T10:00:00.000Z')],
  ])('coerces a date given as %s to a Date', (_case, value) => {
    const where = parseWhere({ createdAt: { gt: value }, updatedAt: value }, ITEM_FILTER);
    const gt = (where.createdAt as { $gt: unknown }).$gt;
    expect(gt).toBeInstanceOf(Date);
    expect((gt as Date).getTime()).toBe(new Date(value as string).getTime());
    expect(where.updatedAt).toBeInstanceOf(Date);
  });

  it('coerces both ends of a date between to Dates', () => {
    const where = parseWhere({ createdAt: { between: ['2024-01-01', '2024-12-31'] } }, ITEM_FILTER);
    expect(where).toStrictEqual({ createdAt: { $gte: new Date('2024-01-01'), $lte: new Date('2024-12-31') } });
  });

  it('coerces milliseconds since 1970 given as a bracket-form digit string to a Date', () => {
    const ms = Date.parse('2024-03-01T10:00:00.000Z');
    const where = parseWhere({ createdAt: { gt: String(ms) } }, ITEM_FILTER);
    expect(where).toStrictEqual({ createdAt: { $gt: new Date(ms) } });
  });

  it('names the path `where` by default and a given path otherwise', () => {
    expectRejected(() => parseWhere({ sku: 5 }, ITEM_FILTER), 'where.sku', 'invalid_value');
    expectRejected(() => parseWhere({ sku: 5 }, ITEM_FILTER, 'filter.scope.where'), 'filter.scope.where.sku', 'invalid_value');
  });
});

describe('parseWhere (BOX_FILTER)', () => {
  it('reads a box _id as an ObjectId', () => {
    expect(parseWhere({ _id: HEX }, BOX_FILTER)).toStrictEqual({ _id: oid() });
  });

  it('reads _id inq and nin as lists of ObjectIds', () => {
    expect(parseWhere({ _id: { inq: [HEX, HEX2] } }, BOX_FILTER)).toStrictEqual({ _id: { $in: [oid(), oid(HEX2)] } });
    expect(parseWhere({ _id: { nin: [HEX2] } }, BOX_FILTER)).toStrictEqual({ _id: { $nin: [oid(HEX2)] } });
  });

  it('refuses a sku where a box _id is expected', () => {
    expectRejected(() => parseWhere({ _id: 'sensor-1' }, BOX_FILTER), 'where._id', 'invalid_value');
  });

  it('reads itemIds by ObjectId and by sku', () => {
    expect(parseWhere({ itemIds: HEX }, BOX_FILTER)).toStrictEqual({ itemIds: oid() });
    const bySku = parseWhere({ itemIds: 'sensor-1' }, BOX_FILTER);
    expect(bySku.itemIds).toBeInstanceOf(AlternateKeyRef);
    expect(bySku).toStrictEqual({ itemIds: new AlternateKeyRef('sensor-1') });
  });

  it('reads itemIds inq, nin and neq with ObjectIds and AlternateKeyRefs', () => {
    expect(parseWhere({ itemIds: { inq: [HEX, 'a'] } }, BOX_FILTER)).toStrictEqual({
      itemIds: { $in: [oid(), new AlternateKeyRef('a')] },
    });
    expect(parseWhere({ itemIds: { nin: ['a'] } }, BOX_FILTER)).toStrictEqual({ itemIds: { $nin: [new AlternateKeyRef('a')] } });
    expect(parseWhere({ itemIds: { neq: HEX } }, BOX_FILTER)).toStrictEqual({ itemIds: { $ne: oid() } });
  });

  it('refuses an itemIds value that is neither an ObjectId nor a sku', () => {
    expectRejected(() => parseWhere({ itemIds: 'not a sku!' }, BOX_FILTER), 'where.itemIds', 'invalid_value');
    expectRejected(() => parseWhere({ itemIds: { inq: ['ok', 'count'] } }, BOX_FILTER), 'where.itemIds.inq[1]', 'invalid_value');
  });

  it('translates pattern operators on name', () => {
    expect(parseWhere({ name: { ilike: 'kit' } }, BOX_FILTER)).toStrictEqual({ name: { $regex: 'kit', $options: 'i' } });
    expect(parseWhere({ name: { nlike: '^x' } }, BOX_FILTER)).toStrictEqual({ name: { $not: /^x/ } });
  });

  it('refuses pattern operators on ids and dates', () => {
    expectRejected(() => parseWhere({ itemIds: { like: 'a' } }, BOX_FILTER), 'where.itemIds.like', 'unknown_operator');
    expectRejected(() => parseWhere({ createdAt: { regexp: '/2024/' } }, BOX_FILTER), 'where.createdAt.regexp', 'unknown_operator');
    expectRejected(() => parseWhere({ _id: { ilike: 'a' } }, BOX_FILTER), 'where._id.ilike', 'unknown_operator');
  });
});

describe('parseFilter', () => {
  it('gives the defaults for an absent filter', () => {
    expect(parseFilter(undefined, ITEM_FILTER)).toEqual({
      where: {},
      fields: undefined,
      order: undefined,
      limit: 100,
      skip: 0,
      include: [],
    });
    expect(parseFilter({}, BOX_FILTER)).toEqual({ where: {}, fields: undefined, order: undefined, limit: 100, skip: 0, include: [] });
  });

  it.each<[string, unknown, Record<string, 0 | 1>]>([
    ['a list', ['sku', 'serial'], { sku: 1, serial: 1 }],
    ['a comma-separated string', 'sku, serial', { sku: 1, serial: 1 }],
    ['an object of true', { sku: true, _id: false }, { sku: 1, _id: 0 }],
    ['an object of false', { serial: false, createdAt: false }, { serial: 0, createdAt: 0 }],
    ['bracket-form strings', { sku: 'true', _id: 'false' }, { sku: 1, _id: 0 }],
    ['bracket-form 1 and 0', { sku: '1', updatedAt: '1' }, { sku: 1, updatedAt: 1 }],
  ])('reads fields given as %s', (_case, fields, expected) => {
    expect(parseFilter({ fields }, ITEM_FILTER).fields).toStrictEqual(expected);
  });

  it.each<[string, unknown, Record<string, 1 | -1>]>([
    ['"field ASC"', 'sku ASC', { sku: 1 }],
    ['"field DESC"', 'createdAt DESC', { createdAt: -1 }],
    ['a bare field', 'sku', { sku: 1 }],
    ['lower-case direction', 'sku desc', { sku: -1 }],
    ['a list', ['serial DESC', 'sku ASC'], { serial: -1, sku: 1 }],
    ['a comma-separated string', 'serial DESC, sku', { serial: -1, sku: 1 }],
  ])('reads order given as %s', (_case, order, expected) => {
    const parsed = parseFilter({ order }, ITEM_FILTER).order;
    expect(parsed).toStrictEqual(expected);
    expect(Object.keys(parsed!)).toEqual(Object.keys(expected));
  });

  it.each<[string, Record<string, unknown>, { limit: number | undefined; skip: number }]>([
    ['a number limit', { limit: 5 }, { limit: 5, skip: 0 }],
    ['a bracket-form limit "5"', { limit: '5' }, { limit: 5, skip: 0 }],
    ['limit 1', { limit: 1 }, { limit: 1, skip: 0 }],
    ['limit 1000', { limit: 1000 }, { limit: 1000, skip: 0 }],
    ['skip', { skip: 7 }, { limit: 100, skip: 7 }],
    ['a bracket-form skip "3"', { skip: '3' }, { limit: 100, skip: 3 }],
    ['offset as skip', { offset: 4 }, { limit: 100, skip: 4 }],
    ['skip 0', { skip: 0 }, { limit: 100, skip: 0 }],
  ])('reads %s', (_case, filter, expected) => {
    const parsed = parseFilter(filter, ITEM_FILTER);
    expect({ limit: parsed.limit, skip: parsed.skip }).toEqual(expected);
  });

  it('reads include "items" on boxes with an empty scope and no default limit', () => {
    expect(parseFilter({ include: 'items' }, BOX_FILTER).include).toEqual([
      { relation: 'items', scope: { where: {}, fields: undefined, order: undefined, limit: undefined, skip: 0, include: [] } },
    ]);
    expect(parseFilter({ include: ['items'] }, BOX_FILTER).include).toHaveLength(1);
  });

  it('reads include with a scope of where, fields, order, limit and skip', () => {
    const parsed = parseFilter(
      {
        include: {
          relation: 'items',
          scope: {
            where: { _id: { inq: [HEX, 'sensor-1'] }, sku: { like: '^s' } },
            fields: ['sku'],
            order: 'sku DESC',
            limit: '2',
            skip: 1,
          },
        },
      },
      BOX_FILTER,
    );
    expect(parsed.include).toStrictEqual([
      {
        relation: 'items',
        scope: {
          where: { _id: { $in: [oid(), new AlternateKeyRef('sensor-1')] }, sku: { $regex: '^s', $options: '' } },
          fields: { sku: 1 },
          order: { sku: -1 },
          limit: 2,
          skip: 1,
          include: [],
        },
      },
    ]);
  });

  it('reads include scope fields against the item fields, not the box fields', () => {
    expectRejected(
      () => parseFilter({ include: { relation: 'items', scope: { fields: ['name'] } } }, BOX_FILTER),
      'filter.include.scope.fields[0]',
      'unknown_field',
    );
  });

  it('translates a whole filter and leaves no $ key but those it emits', () => {
    const parsed = parseFilter(
      {
        where: {
          or: [
            { name: { like: 'a', options: 'i' } },
            { name: { nilike: 'b' } },
            { and: [{ itemIds: { inq: [HEX, 'x'] } }, { itemIds: { nin: [HEX2] } }, { itemIds: { neq: 'y' } }] },
            { createdAt: { between: ['2024-01-01', '2025-01-01'] } },
            { updatedAt: { gt: '2024-01-01', lt: '2025-01-01', gte: '2024-01-01', lte: '2025-01-01' } },
            { name: { exists: true } },
          ],
        },
        include: { relation: 'items', scope: { where: { sku: { regexp: '/x/i' } } } },
      },
      BOX_FILTER,
    );
    const keys = [...dollarKeys(parsed.where), ...dollarKeys(parsed.include[0].scope.where)];
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.filter((key) => !EMITTED.has(key))).toEqual([]);
    expect(new Set(keys)).toEqual(EMITTED);
  });
});

describe('parseFilter rejections', () => {
  it.each<[string, unknown, FilterSpec, string, string]>([
    ['$where at the top', { $where: 'sleep(1000)' }, ITEM_FILTER, 'filter.$where', 'forbidden_key'],
    ['$where in where', { where: { $where: 'this.sku' } }, ITEM_FILTER, 'filter.where.$where', 'forbidden_key'],
    ['a raw $ne', { where: { name: { $ne: null } } }, BOX_FILTER, 'filter.where.name.$ne', 'forbidden_key'],
    ['a raw $gt', { where: { sku: { $gt: '' } } }, ITEM_FILTER, 'filter.where.sku.$gt', 'forbidden_key'],
    ['a raw $or', { where: { $or: [{ sku: 'a' }] } }, ITEM_FILTER, 'filter.where.$or', 'forbidden_key'],
    ['a $ key inside an inq list', { where: { sku: { inq: [{ $gt: '' }] } } }, ITEM_FILTER, 'filter.where.sku.inq[0].$gt', 'forbidden_key'],
    [
      'a $ key in an include scope',
      { include: { relation: 'items', scope: { where: { $expr: 1 } } } },
      BOX_FILTER,
      'filter.include.scope.where.$expr',
      'forbidden_key',
    ],
    ['__proto__', JSON.parse('{"where":{"__proto__":{"polluted":true}}}'), ITEM_FILTER, 'filter.where.__proto__', 'forbidden_key'],
    ['__proto__ at the top', JSON.parse('{"__proto__":{"polluted":true}}'), ITEM_FILTER, 'filter.__proto__', 'forbidden_key'],
    [
      'constructor',
      { where: { constructor: { prototype: { polluted: true } } } },
      ITEM_FILTER,
      'filter.where.constructor',
      'forbidden_key',
    ],
    ['prototype', { fields: { prototype: true } }, ITEM_FILTER, 'filter.fields.prototype', 'forbidden_key'],
    ['an unknown top-level key', { sort: 'sku' }, ITEM_FILTER, 'filter.sort', 'unknown_key'],
    ['an unknown field', { where: { owner: 'a' } }, ITEM_FILTER, 'filter.where.owner', 'unknown_field'],
    ['a box field on items', { where: { name: 'a' } }, ITEM_FILTER, 'filter.where.name', 'unknown_field'],
    [
      'an unknown field in or',
      { where: { or: [{ sku: 'a' }, { colour: 'b' }] } },
      ITEM_FILTER,
      'filter.where.or[1].colour',
      'unknown_field',
    ],
    ['an unknown operator', { where: { sku: { near: 'a' } } }, ITEM_FILTER, 'filter.where.sku.near', 'unknown_operator'],
    [
      'a pattern operator on a date',
      { where: { createdAt: { like: '2024' } } },
      ITEM_FILTER,
      'filter.where.createdAt.like',
      'unknown_operator',
    ],
    ['options without a pattern', { where: { sku: { options: 'i' } } }, ITEM_FILTER, 'filter.where.sku.options', 'unknown_operator'],
    [
      '1001 inq values',
      { where: { sku: { inq: Array.from({ length: 1001 }, (_, i) => `d${i}`) } } },
      ITEM_FILTER,
      'filter.where.sku.inq',
      'too_many_values',
    ],
    [
      '1001 nin values',
      { where: { itemIds: { nin: Array.from({ length: 1001 }, () => HEX) } } },
      BOX_FILTER,
      'filter.where.itemIds.nin',
      'too_many_values',
    ],
    ['a 257-character like', { where: { sku: { like: 'a'.repeat(257) } } }, ITEM_FILTER, 'filter.where.sku.like', 'pattern_too_long'],
    [
      'a 257-character regexp',
      { where: { name: { regexp: `/${'a'.repeat(255)}/` } } },
      BOX_FILTER,
      'filter.where.name.regexp',
      'pattern_too_long',
    ],
    ['an invalid regular expression', { where: { sku: { like: '(' } } }, ITEM_FILTER, 'filter.where.sku.like', 'invalid_pattern'],
    ['an invalid regexp literal', { where: { sku: { regexp: '/[a/' } } }, ITEM_FILTER, 'filter.where.sku.regexp', 'invalid_pattern'],
    ['an unknown regexp flag', { where: { sku: { regexp: '/a/y' } } }, ITEM_FILTER, 'filter.where.sku.regexp', 'invalid_value'],
    ['unknown options flags', { where: { sku: { like: 'a', options: 'gx' } } }, ITEM_FILTER, 'filter.where.sku.options', 'invalid_value'],
    ['a non-string pattern', { where: { sku: { like: 5 } } }, ITEM_FILTER, 'filter.where.sku.like', 'invalid_value'],
    ['a number for a string field', { where: { sku: 5 } }, ITEM_FILTER, 'filter.where.sku', 'invalid_value'],
    ['a list for a string field', { where: { sku: ['a'] } }, ITEM_FILTER, 'filter.where.sku', 'invalid_value'],
    ['an invalid date', { where: { createdAt: { gt: 'yesterday' } } }, ITEM_FILTER, 'filter.where.createdAt.gt', 'invalid_value'],
    ['a boolean date', { where: { createdAt: true } }, ITEM_FILTER, 'filter.where.createdAt', 'invalid_value'],
    ['an invalid item id', { where: { _id: 'not a key!' } }, ITEM_FILTER, 'filter.where._id', 'invalid_value'],
    ['a reserved word as item id', { where: { _id: { inq: ['rel'] } } }, ITEM_FILTER, 'filter.where._id.inq[0]', 'invalid_value'],
    ['a between of one value', { where: { sku: { between: ['a'] } } }, ITEM_FILTER, 'filter.where.sku.between', 'invalid_value'],
    [
      'a between with a bad end',
      { where: { createdAt: { between: ['2024-01-01', 'later'] } } },
      ITEM_FILTER,
      'filter.where.createdAt.between[1]',
      'invalid_value',
    ],
    ['an inq that is not a list', { where: { sku: { inq: 'a' } } }, ITEM_FILTER, 'filter.where.sku.inq', 'invalid_value'],
    ['an exists that is not a boolean', { where: { sku: { exists: 'yes' } } }, ITEM_FILTER, 'filter.where.sku.exists', 'invalid_value'],
    ['an empty or', { where: { or: [] } }, ITEM_FILTER, 'filter.where.or', 'invalid_where'],
    ['an and that is not a list', { where: { and: { sku: 'a' } } }, ITEM_FILTER, 'filter.where.and', 'invalid_where'],
    ['a where that is a list', { where: [{ sku: 'a' }] }, ITEM_FILTER, 'filter.where', 'invalid_where'],
    ['a filter that is a list', [{ limit: 1 }], ITEM_FILTER, 'filter', 'invalid_filter'],
    ['a filter that is a string', 'limit=1', ITEM_FILTER, 'filter', 'invalid_filter'],
    ['limit 0', { limit: 0 }, ITEM_FILTER, 'filter.limit', 'out_of_range'],
    ['limit 1001', { limit: 1001 }, ITEM_FILTER, 'filter.limit', 'out_of_range'],
    ['a fractional limit', { limit: 2.5 }, ITEM_FILTER, 'filter.limit', 'out_of_range'],
    ['a negative limit string', { limit: '-1' }, ITEM_FILTER, 'filter.limit', 'out_of_range'],
    ['a non-numeric limit', { limit: 'all' }, ITEM_FILTER, 'filter.limit', 'out_of_range'],
    ['a negative skip', { skip: -1 }, ITEM_FILTER, 'filter.skip', 'out_of_range'],
    ['a negative offset', { offset: -5 }, ITEM_FILTER, 'filter.offset', 'out_of_range'],
    ['skip and offset together', { skip: 1, offset: 2 }, ITEM_FILTER, 'filter.offset', 'conflict'],
    ['an unknown field in fields', { fields: ['sku', 'secret'] }, ITEM_FILTER, 'filter.fields[1]', 'unknown_field'],
    ['a non-string in fields', { fields: ['sku', 3] }, ITEM_FILTER, 'filter.fields[1]', 'invalid_field'],
    ['a fields flag that is not a boolean', { fields: { sku: 'maybe' } }, ITEM_FILTER, 'filter.fields.sku', 'invalid_value'],
    ['mixed inclusion and exclusion', { fields: { sku: true, serial: false } }, ITEM_FILTER, 'filter.fields', 'invalid_fields'],
    ['fields of a number', { fields: 5 }, ITEM_FILTER, 'filter.fields', 'invalid_fields'],
    ['an order on an unknown field', { order: 'secret DESC' }, ITEM_FILTER, 'filter.order', 'unknown_field'],
    ['an order with a bad direction', { order: ['sku UP'] }, ITEM_FILTER, 'filter.order[0]', 'invalid_order'],
    ['an order that is an object', { order: { sku: 1 } }, ITEM_FILTER, 'filter.order', 'invalid_order'],
    ['include on items', { include: 'items' }, ITEM_FILTER, 'filter.include', 'unknown_relation'],
    ['an unknown relation', { include: 'owners' }, BOX_FILTER, 'filter.include', 'unknown_relation'],
    ['an unknown relation in a list', { include: ['items', { relation: 'owners' }] }, BOX_FILTER, 'filter.include[1]', 'unknown_relation'],
    ['an include without relation', { include: { scope: {} } }, BOX_FILTER, 'filter.include', 'unknown_relation'],
    ['an unknown key beside relation', { include: { relation: 'items', where: {} } }, BOX_FILTER, 'filter.include.where', 'unknown_key'],
    [
      'include inside a scope',
      { include: { relation: 'items', scope: { include: 'items' } } },
      BOX_FILTER,
      'filter.include.scope.include',
      'unknown_key',
    ],
    [
      'a scope limit of 0',
      { include: { relation: 'items', scope: { limit: 0 } } },
      BOX_FILTER,
      'filter.include.scope.limit',
      'out_of_range',
    ],
    [
      'a box field in a scope where',
      { include: { relation: 'items', scope: { where: { name: 'a' } } } },
      BOX_FILTER,
      'filter.include.scope.where.name',
      'unknown_field',
    ],
  ])('refuses %s', (_case, raw, spec, path, code) => {
    expectRejected(() => parseFilter(raw, spec), path, code);
  });

  it('accepts exactly 1000 inq values, 256-character patterns and nesting to level 12', () => {
    expect(parseFilter({ where: { sku: { inq: Array.from({ length: 1000 }, (_, i) => `d${i}`) } } }, ITEM_FILTER).where.sku).toEqual({
      $in: expect.arrayContaining(['d0', 'd999']),
    });
    expect(parseFilter({ where: { sku: { like: 'a'.repeat(256) } } }, ITEM_FILTER).where.sku).toEqual({
      $regex: 'a'.repeat(256),
      $options: '',
    });
    // where (1), five and-levels of list + item (11), the field (12) holding a string.
    const deepest = parseFilter({ where: nestedAnd(5, { sku: 'x' }) }, ITEM_FILTER).where;
    expect(deepest).toStrictEqual({ $and: [{ $and: [{ $and: [{ $and: [{ $and: [{ sku: 'x' }] }] }] }] }] });
    // Below `where` itself: five and-levels (10), the field (11), the operator (12).
    expect(parseWhere(nestedAnd(5, { sku: { neq: 'x' } }), ITEM_FILTER)).toStrictEqual({
      $and: [{ $and: [{ $and: [{ $and: [{ $and: [{ sku: { $ne: 'x' } }] }] }] }] }],
    });
  });

  it('accepts and/or three deep with operators inside (bug: refused as nesting deeper than 8)', () => {
    const where = {
      and: [
        { name: { like: '^a' } },
        { or: [{ name: 'b' }, { and: [{ itemIds: { inq: [HEX, HEX2] } }, { createdAt: { between: ['2024-01-01', '2025-01-01'] } }] }] },
      ],
    };
    expect(parseFilter({ where }, BOX_FILTER).where).toStrictEqual({
      $and: [
        { name: { $regex: '^a', $options: '' } },
        {
          $or: [
            { name: 'b' },
            {
              $and: [
                { itemIds: { $in: [oid(HEX), oid(HEX2)] } },
                { createdAt: { $gte: new Date('2024-01-01'), $lte: new Date('2025-01-01') } },
              ],
            },
          ],
        },
      ],
    });
  });

  it('refuses nesting past level 12, as LoopBack 3 counts maxDepthOfQuery, with too_deep at the first level past it', () => {
    expectRejected(
      () => parseFilter({ where: nestedAnd(5, { sku: { neq: 'x' } }) }, ITEM_FILTER),
      `filter.where${'.and[0]'.repeat(5)}.sku.neq`,
      'too_deep',
    );
    expectRejected(() => parseWhere(nestedAnd(6, { sku: 'x' }), ITEM_FILTER), `where${'.and[0]'.repeat(6)}.sku`, 'too_deep');
    // LoopBack's own case: nine and-levels under where, refused at maxDepthOfQuery 12.
    expectRejected(() => parseFilter({ where: nestedAnd(9, { x: 1 }) }, ITEM_FILTER), `filter.where${'.and[0]'.repeat(6)}`, 'too_deep');
  });

  it('refuses a deep object of unknown shape without walking it further', () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let level = 0; level < 50; level += 1) deep = { nested: deep };
    const { details } = rejection(() => parseFilter({ where: deep }, ITEM_FILTER));
    expect(details).toEqual([{ path: `filter.where${'.nested'.repeat(12)}`, code: 'too_deep', message: expect.any(String) }]);
  });

  it('reports every problem at once', () => {
    const { details } = rejection(() =>
      parseFilter({ where: { owner: 'a', sku: { near: 'b' } }, limit: 0, skip: 1, offset: 1 }, ITEM_FILTER),
    );
    expect(details.map((detail) => `${detail.path} ${detail.code}`).sort()).toEqual(
      [
        'filter.limit out_of_range',
        'filter.offset conflict',
        'filter.where.sku.near unknown_operator',
        'filter.where.owner unknown_field',
      ].sort(),
    );
  });

  it('reports forbidden keys before translating anything', () => {
    const { details } = rejection(() => parseFilter({ where: { sku: { $ne: 'a' }, owner: 'b' } }, ITEM_FILTER));
    expect(details).toEqual([{ path: 'filter.where.sku.$ne', code: 'forbidden_key', message: expect.any(String) }]);
  });

  it('reads objects without a prototype, as the bracket form gives them', () => {
    const where = Object.assign(Object.create(null) as Record<string, unknown>, {
      sku: Object.assign(Object.create(null) as object, { inq: ['a', 'b'] }),
    });
    const filter = Object.assign(Object.create(null) as Record<string, unknown>, {
      where,
      limit: '2',
      fields: Object.assign(Object.create(null) as object, { sku: 'true' }),
    });
    expect(parseFilter(filter, ITEM_FILTER)).toEqual({
      where: { sku: { $in: ['a', 'b'] } },
      fields: { sku: 1 },
      order: undefined,
      limit: 2,
      skip: 0,
      include: [],
    });
  });

  it('refuses __proto__ held as an own key of an object without a prototype', () => {
    const where = Object.create(null) as Record<string, unknown>;
    where['__proto__'] = { polluted: 'yes' };
    expectRejected(() => parseFilter({ where }, ITEM_FILTER), 'filter.where.__proto__', 'forbidden_key');
    expectRejected(() => parseWhere(where, BOX_FILTER), 'where.__proto__', 'forbidden_key');
  });

  it('leaves Object.prototype untouched by a __proto__ filter', () => {
    expect(() => parseFilter(JSON.parse('{"where":{"sku":{"__proto__":{"polluted":"yes"}}}}'), ITEM_FILTER)).toThrow(BadRequestException);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('$ names outside keys', () => {
  it.each<[string, unknown, string]>([
    ['an order on $natural', { order: '$natural ASC' }, 'filter.order'],
    ['an order list with $natural', { order: ['name ASC', '$natural DESC'] }, 'filter.order[1]'],
    ['fields naming $natural', { fields: ['name', '$natural'] }, 'filter.fields[1]'],
    ['fields as a string naming $natural', { fields: 'name,$natural' }, 'filter.fields'],
    ['an include of $lookup', { include: '$lookup' }, 'filter.include'],
    ['an include relation of $lookup', { include: { relation: '$lookup' } }, 'filter.include.relation'],
  ])('refuses %s with a message that says $ is refused (bug: "must be field ASC or field DESC")', (_case, raw, path) => {
    const { details, message } = rejection(() => parseFilter(raw, BOX_FILTER));
    expect(details).toEqual([{ path, code: 'forbidden_value', message: expect.stringContaining('starting with $ are refused') }]);
    expect(message).toContain('$ are refused');
  });

  it('says the same for $ keys', () => {
    const { details } = rejection(() => parseFilter({ where: { $where: '1' } }, BOX_FILTER));
    expect(details).toEqual([
      { path: 'filter.where.$where', code: 'forbidden_key', message: expect.stringContaining('starting with $ are refused') },
    ]);
  });

  it('keeps a $ in a value to compare with: it is data, never an operator', () => {
    expect(parseFilter({ where: { name: '$natural' } }, BOX_FILTER).where).toStrictEqual({ name: '$natural' });
  });
});

describe('patterns', () => {
  // What the engines refuse or read otherwise (issue: each answered 500).
  it.each([
    '{',
    'a{',
    'x{,5}',
    '[^]',
    '[]',
    '\\u{41}',
    '\\u0041',
    ']',
    'a{2,1}',
    '(?<n>a)',
    '(?<=a)b',
    '[a[b]',
    '[a&&b]',
    '\\v',
    '\\0',
    'a\u0000',
  ])('refuses %j as invalid_pattern in every operator', (pattern) => {
    for (const operator of ['like', 'nlike', 'ilike', 'nilike', 'regexp']) {
      expectRejected(() => parseWhere({ sku: { [operator]: pattern } }, ITEM_FILTER), `where.sku.${operator}`, 'invalid_pattern');
    }
    expectRejected(() => parseWhere({ sku: { regexp: `/${pattern}/i` } }, ITEM_FILTER), 'where.sku.regexp', 'invalid_pattern');
  });

  it.each([
    ['a backreference', '(a+)\\1'],
    ['a repetition count above 100', '(.*){1,32000}[bc]'],
    ['optional parts that combine in more than 100 ways', 'a?a?a?a?a?a?a?a?aaaaaaaa'],
  ])('refuses %s as unsafe_pattern before anything else runs', (_case, pattern) => {
    expectRejected(() => parseWhere({ name: { like: pattern } }, BOX_FILTER), 'where.name.like', 'unsafe_pattern');
  });

  it('hands every accepted pattern, with its path and flags, to the ReDoS check', () => {
    const patterns: PatternUse[] = [];
    parseFilter(
      {
        where: { or: [{ name: { ilike: '^a' } }, { name: { regexp: '/b+/m' } }] },
        include: { relation: 'items', scope: { where: { sku: { nlike: 'c', options: 's' } } } },
      },
      BOX_FILTER,
      'filter',
      patterns,
    );
    expect(patterns).toEqual([
      { path: 'filter.include.scope.where.sku.nlike', checkSource: 'c', flags: 's' },
      { path: 'filter.where.or[0].name.ilike', checkSource: '^a', flags: 'i' },
      { path: 'filter.where.or[1].name.regexp', checkSource: 'b+', flags: 'm' },
    ]);
  });

  it("refuses the issue's super-linear patterns as unsafe_pattern, naming each path, and passes linear ones", async () => {
    const patterns: PatternUse[] = [];
    const where = {
      and: [
        { name: { like: '((a+)+)+$' } },
        { name: { nilike: '(a|a)*$' } },
        { name: { like: 'lamp.*hall' } },
        { name: { like: '^dev-\\d+$' } },
      ],
    };
    parseWhere(where, BOX_FILTER, 'where', patterns);
    const refused = await refuseSuperLinearPatterns(patterns).then(
      () => undefined,
      (error: unknown) => error as BadRequestException,
    );
    expect(refused).toBeInstanceOf(BadRequestException);
    const { details } = refused!.getResponse() as { details: Detail[] };
    expect(details.map((detail) => `${detail.path} ${detail.code}`)).toEqual([
      'where.and[0].name.like unsafe_pattern',
      'where.and[1].name.nilike unsafe_pattern',
      'where.and[2].name.like unsafe_pattern',
    ]);
    await expect(refuseSuperLinearPatterns(patterns.slice(3))).resolves.toBeUndefined();
  });
});

describe('parseWhere rejections', () => {
  it.each<[string, unknown, FilterSpec, string, string]>([
    ['$where', { $where: '1' }, ITEM_FILTER, 'where.$where', 'forbidden_key'],
    ['a raw $ne on name', { name: { $ne: null } }, BOX_FILTER, 'where.name.$ne', 'forbidden_key'],
    ['__proto__', JSON.parse('{"__proto__":{"x":1}}'), BOX_FILTER, 'where.__proto__', 'forbidden_key'],
    ['an unknown field', { colour: 'red' }, ITEM_FILTER, 'where.colour', 'unknown_field'],
    ['an unknown operator', { name: { contains: 'a' } }, BOX_FILTER, 'where.name.contains', 'unknown_operator'],
    ['a filter key in a where', { limit: 1 }, ITEM_FILTER, 'where.limit', 'unknown_field'],
    ['an unknown field in or', { or: [{ sku: 'a' }, { nope: 1 }] }, ITEM_FILTER, 'where.or[1].nope', 'unknown_field'],
    ['a where that is a string', 'sku=a', ITEM_FILTER, 'where', 'invalid_where'],
    ['1001 inq values', { _id: { inq: Array.from({ length: 1001 }, () => HEX) } }, BOX_FILTER, 'where._id.inq', 'too_many_values'],
  ])('refuses %s', (_case, raw, spec, path, code) => {
    expectRejected(() => parseWhere(raw, spec), path, code);
  });
});

describe('readQueryObject', () => {
  it('parses JSON and passes bracket-form objects through', () => {
    expect(readQueryObject('{"limit":2}', 'filter')).toEqual({ limit: 2 });
    const bracket = { where: { sku: 'a' } };
    expect(readQueryObject(bracket, 'filter')).toBe(bracket);
  });

  it('reads an absent or empty value as no filter', () => {
    expect(readQueryObject(undefined, 'filter')).toBeUndefined();
    expect(readQueryObject('', 'where')).toBeUndefined();
  });

  it.each([['{"limit":'], ['limit=2'], ["{'where':{}}"]])('refuses %s as invalid_json with the path it was given', (raw) => {
    expectRejected(() => readQueryObject(raw, 'where'), 'where', 'invalid_json');
  });
});
