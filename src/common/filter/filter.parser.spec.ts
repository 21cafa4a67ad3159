import { describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { Types } from 'mongoose';
import { ACCOUNT } from '../../accounts/account.shape.js';
import { DEVICE } from '../../devices/device.shape.js';
import { parseFilter, parseWhere, readQueryObject, refuseSuperLinearPatterns } from './filter.parser.js';
import { type PatternUse } from './filter.patterns.js';
import { type FilterSpec, AlternateKeyRef } from './filter.types.js';

const ACCOUNT_FILTER = ACCOUNT.filter;
const DEVICE_FILTER = DEVICE.filter;

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

describe('parseWhere (DEVICE_FILTER)', () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['equality on a string', { myId: 'a' }, { myId: 'a' }],
    ['equality with null', { deviceUID: null }, { deviceUID: null }],
    ['neq', { myId: { neq: 'a' } }, { myId: { $ne: 'a' } }],
    ['neq null', { myId: { neq: null } }, { myId: { $ne: null } }],
    ['gt', { myId: { gt: 'a' } }, { myId: { $gt: 'a' } }],
    ['gte', { myId: { gte: 'a' } }, { myId: { $gte: 'a' } }],
    ['lt', { myId: { lt: 'z' } }, { myId: { $lt: 'z' } }],
    ['lte', { myId: { lte: 'z' } }, { myId: { $lte: 'z' } }],
    ['gt and lt together', { myId: { gt: 'a', lt: 'z' } }, { myId: { $gt: 'a', $lt: 'z' } }],
    ['between', { myId: { between: ['a', 'm'] } }, { myId: { $gte: 'a', $lte: 'm' } }],
    ['inq', { myId: { inq: ['a', 'b'] } }, { myId: { $in: ['a', 'b'] } }],
    ['nin', { deviceUID: { nin: ['x'] } }, { deviceUID: { $nin: ['x'] } }],
    ['an empty inq', { myId: { inq: [] } }, { myId: { $in: [] } }],
    ['exists true', { deviceUID: { exists: true } }, { deviceUID: { $exists: true } }],
    ['exists false', { deviceUID: { exists: false } }, { deviceUID: { $exists: false } }],
    ['exists "true" from the bracket form', { deviceUID: { exists: 'true' } }, { deviceUID: { $exists: true } }],
    ['exists "false" from the bracket form', { deviceUID: { exists: 'false' } }, { deviceUID: { $exists: false } }],
    ['like', { myId: { like: '^sen.or' } }, { myId: { $regex: '^sen.or', $options: '' } }],
    ['like with options i', { myId: { like: 'sensor', options: 'i' } }, { myId: { $regex: 'sensor', $options: 'i' } }],
    ['ilike', { myId: { ilike: 'Sensor' } }, { myId: { $regex: 'Sensor', $options: 'i' } }],
    ['ilike with options i (flag not doubled)', { myId: { ilike: 'x', options: 'i' } }, { myId: { $regex: 'x', $options: 'i' } }],
    ['nlike', { myId: { nlike: 'tmp' } }, { myId: { $not: /tmp/ } }],
    ['nilike', { myId: { nilike: 'TMP' } }, { myId: { $not: /TMP/i } }],
    ['nlike with options m', { myId: { nlike: '^a', options: 'm' } }, { myId: { $not: /^a/m } }],
    ['regexp as a plain pattern', { myId: { regexp: '^a+$' } }, { myId: { $regex: '^a+$', $options: '' } }],
    ['regexp as /pattern/flags', { myId: { regexp: '/^dev/i' } }, { myId: { $regex: '^dev', $options: 'i' } }],
    ['regexp dropping the g flag', { myId: { regexp: '/x/gi' } }, { myId: { $regex: 'x', $options: 'i' } }],
    ['regexp with a slash inside', { myId: { regexp: '/a\\/b/' } }, { myId: { $regex: 'a\\/b', $options: '' } }],
    ['and', { and: [{ myId: 'a' }, { deviceUID: 'b' }] }, { $and: [{ myId: 'a' }, { deviceUID: 'b' }] }],
    ['or', { or: [{ myId: 'a' }, { myId: { neq: 'b' } }] }, { $or: [{ myId: 'a' }, { myId: { $ne: 'b' } }] }],
    [
      'or inside and',
      { and: [{ or: [{ myId: 'a' }, { myId: 'b' }] }, { deviceUID: { exists: true } }] },
      { $and: [{ $or: [{ myId: 'a' }, { myId: 'b' }] }, { deviceUID: { $exists: true } }] },
    ],
    ['several fields side by side', { myId: 'a', deviceUID: { neq: 'b' } }, { myId: 'a', deviceUID: { $ne: 'b' } }],
  ])('translates %s', (_case, where, expected) => {
    expect(parseWhere(where, DEVICE_FILTER)).toStrictEqual(expected);
  });

  it('gives an empty filter when where is absent', () => {
    expect(parseWhere(undefined, DEVICE_FILTER)).toStrictEqual({});
  });

  it('reads an ObjectId in the _id position as an ObjectId', () => {
    expect(parseWhere({ _id: HEX }, DEVICE_FILTER)).toStrictEqual({ _id: oid() });
  });

  it('reads a myId in the _id position as a AlternateKeyRef for the service to resolve', () => {
    const where = parseWhere({ _id: 'sensor-1' }, DEVICE_FILTER);
    expect(where._id).toBeInstanceOf(AlternateKeyRef);
    expect((where._id as AlternateKeyRef).value).toBe('sensor-1');
  });

  it('reads a mixed inq of ObjectIds and myIds on _id', () => {
    const where = parseWhere({ _id: { inq: [HEX, 'sensor-1'] } }, DEVICE_FILTER);
    expect(where).toStrictEqual({ _id: { $in: [oid(), new AlternateKeyRef('sensor-1')] } });
    expect((where._id as { $in: unknown[] }).$in[0]).toBeInstanceOf(Types.ObjectId);
    expect((where._id as { $in: unknown[] }).$in[1]).toBeInstanceOf(AlternateKeyRef);
  });

  it.each<[string, unknown]>([
    ['an ISO 8601 string', '2024-03-01T10:00:00.000Z'],
    ['a date-only string', '2024-03-01'],
    ['milliseconds since 1970 as a number', Date.parse('2024-03-01T10:00:00.000Z')],
  ])('coerces a date given as %s to a Date', (_case, value) => {
    const where = parseWhere({ createdAt: { gt: value }, updatedAt: value }, DEVICE_FILTER);
    const gt = (where.createdAt as { $gt: unknown }).$gt;
    expect(gt).toBeInstanceOf(Date);
    expect((gt as Date).getTime()).toBe(new Date(value as string).getTime());
    expect(where.updatedAt).toBeInstanceOf(Date);
  });

  it('coerces both ends of a date between to Dates', () => {
    const where = parseWhere({ createdAt: { between: ['2024-01-01', '2024-12-31'] } }, DEVICE_FILTER);
    expect(where).toStrictEqual({ createdAt: { $gte: new Date('2024-01-01'), $lte: new Date('2024-12-31') } });
  });

  it('coerces milliseconds since 1970 given as a bracket-form digit string to a Date', () => {
    const ms = Date.parse('2024-03-01T10:00:00.000Z');
    const where = parseWhere({ createdAt: { gt: String(ms) } }, DEVICE_FILTER);
    expect(where).toStrictEqual({ createdAt: { $gt: new Date(ms) } });
  });

  it('names the path `where` by default and a given path otherwise', () => {
    expectRejected(() => parseWhere({ myId: 5 }, DEVICE_FILTER), 'where.myId', 'invalid_value');
    expectRejected(() => parseWhere({ myId: 5 }, DEVICE_FILTER, 'filter.scope.where'), 'filter.scope.where.myId', 'invalid_value');
  });
});

describe('parseWhere (ACCOUNT_FILTER)', () => {
  it('reads an account _id as an ObjectId', () => {
    expect(parseWhere({ _id: HEX }, ACCOUNT_FILTER)).toStrictEqual({ _id: oid() });
  });

  it('reads _id inq and nin as lists of ObjectIds', () => {
    expect(parseWhere({ _id: { inq: [HEX, HEX2] } }, ACCOUNT_FILTER)).toStrictEqual({ _id: { $in: [oid(), oid(HEX2)] } });
    expect(parseWhere({ _id: { nin: [HEX2] } }, ACCOUNT_FILTER)).toStrictEqual({ _id: { $nin: [oid(HEX2)] } });
  });

  it('refuses a myId where an account _id is expected', () => {
    expectRejected(() => parseWhere({ _id: 'sensor-1' }, ACCOUNT_FILTER), 'where._id', 'invalid_value');
  });

  it('reads deviceIds by ObjectId and by myId', () => {
    expect(parseWhere({ deviceIds: HEX }, ACCOUNT_FILTER)).toStrictEqual({ deviceIds: oid() });
    const byMyId = parseWhere({ deviceIds: 'sensor-1' }, ACCOUNT_FILTER);
    expect(byMyId.deviceIds).toBeInstanceOf(AlternateKeyRef);
    expect(byMyId).toStrictEqual({ deviceIds: new AlternateKeyRef('sensor-1') });
  });

  it('reads deviceIds inq, nin and neq with ObjectIds and AlternateKeyRefs', () => {
    expect(parseWhere({ deviceIds: { inq: [HEX, 'a'] } }, ACCOUNT_FILTER)).toStrictEqual({
      deviceIds: { $in: [oid(), new AlternateKeyRef('a')] },
    });
    expect(parseWhere({ deviceIds: { nin: ['a'] } }, ACCOUNT_FILTER)).toStrictEqual({ deviceIds: { $nin: [new AlternateKeyRef('a')] } });
    expect(parseWhere({ deviceIds: { neq: HEX } }, ACCOUNT_FILTER)).toStrictEqual({ deviceIds: { $ne: oid() } });
  });

  it('refuses a deviceIds value that is neither an ObjectId nor a myId', () => {
    expectRejected(() => parseWhere({ deviceIds: 'not a myId!' }, ACCOUNT_FILTER), 'where.deviceIds', 'invalid_value');
    expectRejected(() => parseWhere({ deviceIds: { inq: ['ok', 'count'] } }, ACCOUNT_FILTER), 'where.deviceIds.inq[1]', 'invalid_value');
  });

  it('translates pattern operators on name', () => {
    expect(parseWhere({ name: { ilike: 'kit' } }, ACCOUNT_FILTER)).toStrictEqual({ name: { $regex: 'kit', $options: 'i' } });
    expect(parseWhere({ name: { nlike: '^x' } }, ACCOUNT_FILTER)).toStrictEqual({ name: { $not: /^x/ } });
  });

  it('refuses pattern operators on ids and dates', () => {
    expectRejected(() => parseWhere({ deviceIds: { like: 'a' } }, ACCOUNT_FILTER), 'where.deviceIds.like', 'unknown_operator');
    expectRejected(() => parseWhere({ createdAt: { regexp: '/2024/' } }, ACCOUNT_FILTER), 'where.createdAt.regexp', 'unknown_operator');
    expectRejected(() => parseWhere({ _id: { ilike: 'a' } }, ACCOUNT_FILTER), 'where._id.ilike', 'unknown_operator');
  });
});

describe('parseFilter', () => {
  it('gives the defaults for an absent filter', () => {
    expect(parseFilter(undefined, DEVICE_FILTER)).toEqual({
      where: {},
      fields: undefined,
      order: undefined,
      limit: 100,
      skip: 0,
      include: [],
    });
    expect(parseFilter({}, ACCOUNT_FILTER)).toEqual({ where: {}, fields: undefined, order: undefined, limit: 100, skip: 0, include: [] });
  });

  it.each<[string, unknown, Record<string, 0 | 1>]>([
    ['a list', ['myId', 'deviceUID'], { myId: 1, deviceUID: 1 }],
    ['a comma-separated string', 'myId, deviceUID', { myId: 1, deviceUID: 1 }],
    ['an object of true', { myId: true, _id: false }, { myId: 1, _id: 0 }],
    ['an object of false', { deviceUID: false, createdAt: false }, { deviceUID: 0, createdAt: 0 }],
    ['bracket-form strings', { myId: 'true', _id: 'false' }, { myId: 1, _id: 0 }],
    ['bracket-form 1 and 0', { myId: '1', updatedAt: '1' }, { myId: 1, updatedAt: 1 }],
  ])('reads fields given as %s', (_case, fields, expected) => {
    expect(parseFilter({ fields }, DEVICE_FILTER).fields).toStrictEqual(expected);
  });

  it.each<[string, unknown, Record<string, 1 | -1>]>([
    ['"field ASC"', 'myId ASC', { myId: 1 }],
    ['"field DESC"', 'createdAt DESC', { createdAt: -1 }],
    ['a bare field', 'myId', { myId: 1 }],
    ['lower-case direction', 'myId desc', { myId: -1 }],
    ['a list', ['deviceUID DESC', 'myId ASC'], { deviceUID: -1, myId: 1 }],
    ['a comma-separated string', 'deviceUID DESC, myId', { deviceUID: -1, myId: 1 }],
  ])('reads order given as %s', (_case, order, expected) => {
    const parsed = parseFilter({ order }, DEVICE_FILTER).order;
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
    const parsed = parseFilter(filter, DEVICE_FILTER);
    expect({ limit: parsed.limit, skip: parsed.skip }).toEqual(expected);
  });

  it('reads include "devices" on accounts with an empty scope and no default limit', () => {
    expect(parseFilter({ include: 'devices' }, ACCOUNT_FILTER).include).toEqual([
      { relation: 'devices', scope: { where: {}, fields: undefined, order: undefined, limit: undefined, skip: 0, include: [] } },
    ]);
    expect(parseFilter({ include: ['devices'] }, ACCOUNT_FILTER).include).toHaveLength(1);
  });

  it('reads include with a scope of where, fields, order, limit and skip', () => {
    const parsed = parseFilter(
      {
        include: {
          relation: 'devices',
          scope: {
            where: { _id: { inq: [HEX, 'sensor-1'] }, myId: { like: '^s' } },
            fields: ['myId'],
            order: 'myId DESC',
            limit: '2',
            skip: 1,
          },
        },
      },
      ACCOUNT_FILTER,
    );
    expect(parsed.include).toStrictEqual([
      {
        relation: 'devices',
        scope: {
          where: { _id: { $in: [oid(), new AlternateKeyRef('sensor-1')] }, myId: { $regex: '^s', $options: '' } },
          fields: { myId: 1 },
          order: { myId: -1 },
          limit: 2,
          skip: 1,
          include: [],
        },
      },
    ]);
  });

  it('reads include scope fields against the device fields, not the account fields', () => {
    expectRejected(
      () => parseFilter({ include: { relation: 'devices', scope: { fields: ['name'] } } }, ACCOUNT_FILTER),
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
            { and: [{ deviceIds: { inq: [HEX, 'x'] } }, { deviceIds: { nin: [HEX2] } }, { deviceIds: { neq: 'y' } }] },
            { createdAt: { between: ['2024-01-01', '2025-01-01'] } },
            { updatedAt: { gt: '2024-01-01', lt: '2025-01-01', gte: '2024-01-01', lte: '2025-01-01' } },
            { name: { exists: true } },
          ],
        },
        include: { relation: 'devices', scope: { where: { myId: { regexp: '/x/i' } } } },
      },
      ACCOUNT_FILTER,
    );
    const keys = [...dollarKeys(parsed.where), ...dollarKeys(parsed.include[0].scope.where)];
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.filter((key) => !EMITTED.has(key))).toEqual([]);
    expect(new Set(keys)).toEqual(EMITTED);
  });
});

describe('parseFilter rejections', () => {
  it.each<[string, unknown, FilterSpec, string, string]>([
    ['$where at the top', { $where: 'sleep(1000)' }, DEVICE_FILTER, 'filter.$where', 'forbidden_key'],
    ['$where in where', { where: { $where: 'this.myId' } }, DEVICE_FILTER, 'filter.where.$where', 'forbidden_key'],
    ['a raw $ne', { where: { name: { $ne: null } } }, ACCOUNT_FILTER, 'filter.where.name.$ne', 'forbidden_key'],
    ['a raw $gt', { where: { myId: { $gt: '' } } }, DEVICE_FILTER, 'filter.where.myId.$gt', 'forbidden_key'],
    ['a raw $or', { where: { $or: [{ myId: 'a' }] } }, DEVICE_FILTER, 'filter.where.$or', 'forbidden_key'],
    [
      'a $ key inside an inq list',
      { where: { myId: { inq: [{ $gt: '' }] } } },
      DEVICE_FILTER,
      'filter.where.myId.inq[0].$gt',
      'forbidden_key',
    ],
    [
      'a $ key in an include scope',
      { include: { relation: 'devices', scope: { where: { $expr: 1 } } } },
      ACCOUNT_FILTER,
      'filter.include.scope.where.$expr',
      'forbidden_key',
    ],
    ['__proto__', JSON.parse('{"where":{"__proto__":{"polluted":true}}}'), DEVICE_FILTER, 'filter.where.__proto__', 'forbidden_key'],
    ['__proto__ at the top', JSON.parse('{"__proto__":{"polluted":true}}'), DEVICE_FILTER, 'filter.__proto__', 'forbidden_key'],
    [
      'constructor',
      { where: { constructor: { prototype: { polluted: true } } } },
      DEVICE_FILTER,
      'filter.where.constructor',
      'forbidden_key',
    ],
    ['prototype', { fields: { prototype: true } }, DEVICE_FILTER, 'filter.fields.prototype', 'forbidden_key'],
    ['an unknown top-level key', { sort: 'myId' }, DEVICE_FILTER, 'filter.sort', 'unknown_key'],
    ['an unknown field', { where: { owner: 'a' } }, DEVICE_FILTER, 'filter.where.owner', 'unknown_field'],
    ['an account field on devices', { where: { name: 'a' } }, DEVICE_FILTER, 'filter.where.name', 'unknown_field'],
    [
      'an unknown field in or',
      { where: { or: [{ myId: 'a' }, { colour: 'b' }] } },
      DEVICE_FILTER,
      'filter.where.or[1].colour',
      'unknown_field',
    ],
    ['an unknown operator', { where: { myId: { near: 'a' } } }, DEVICE_FILTER, 'filter.where.myId.near', 'unknown_operator'],
    [
      'a pattern operator on a date',
      { where: { createdAt: { like: '2024' } } },
      DEVICE_FILTER,
      'filter.where.createdAt.like',
      'unknown_operator',
    ],
    ['options without a pattern', { where: { myId: { options: 'i' } } }, DEVICE_FILTER, 'filter.where.myId.options', 'unknown_operator'],
    [
      '1001 inq values',
      { where: { myId: { inq: Array.from({ length: 1001 }, (_, i) => `d${i}`) } } },
      DEVICE_FILTER,
      'filter.where.myId.inq',
      'too_many_values',
    ],
    [
      '1001 nin values',
      { where: { deviceIds: { nin: Array.from({ length: 1001 }, () => HEX) } } },
      ACCOUNT_FILTER,
      'filter.where.deviceIds.nin',
      'too_many_values',
    ],
    ['a 257-character like', { where: { myId: { like: 'a'.repeat(257) } } }, DEVICE_FILTER, 'filter.where.myId.like', 'pattern_too_long'],
    [
      'a 257-character regexp',
      { where: { name: { regexp: `/${'a'.repeat(255)}/` } } },
      ACCOUNT_FILTER,
      'filter.where.name.regexp',
      'pattern_too_long',
    ],
    ['an invalid regular expression', { where: { myId: { like: '(' } } }, DEVICE_FILTER, 'filter.where.myId.like', 'invalid_pattern'],
    ['an invalid regexp literal', { where: { myId: { regexp: '/[a/' } } }, DEVICE_FILTER, 'filter.where.myId.regexp', 'invalid_pattern'],
    ['an unknown regexp flag', { where: { myId: { regexp: '/a/y' } } }, DEVICE_FILTER, 'filter.where.myId.regexp', 'invalid_value'],
    [
      'unknown options flags',
      { where: { myId: { like: 'a', options: 'gx' } } },
      DEVICE_FILTER,
      'filter.where.myId.options',
      'invalid_value',
    ],
    ['a non-string pattern', { where: { myId: { like: 5 } } }, DEVICE_FILTER, 'filter.where.myId.like', 'invalid_value'],
    ['a number for a string field', { where: { myId: 5 } }, DEVICE_FILTER, 'filter.where.myId', 'invalid_value'],
    ['a list for a string field', { where: { myId: ['a'] } }, DEVICE_FILTER, 'filter.where.myId', 'invalid_value'],
    ['an invalid date', { where: { createdAt: { gt: 'yesterday' } } }, DEVICE_FILTER, 'filter.where.createdAt.gt', 'invalid_value'],
    ['a boolean date', { where: { createdAt: true } }, DEVICE_FILTER, 'filter.where.createdAt', 'invalid_value'],
    ['an invalid device id', { where: { _id: 'not a key!' } }, DEVICE_FILTER, 'filter.where._id', 'invalid_value'],
    ['a reserved word as device id', { where: { _id: { inq: ['rel'] } } }, DEVICE_FILTER, 'filter.where._id.inq[0]', 'invalid_value'],
    ['a between of one value', { where: { myId: { between: ['a'] } } }, DEVICE_FILTER, 'filter.where.myId.between', 'invalid_value'],
    [
      'a between with a bad end',
      { where: { createdAt: { between: ['2024-01-01', 'later'] } } },
      DEVICE_FILTER,
      'filter.where.createdAt.between[1]',
      'invalid_value',
    ],
    ['an inq that is not a list', { where: { myId: { inq: 'a' } } }, DEVICE_FILTER, 'filter.where.myId.inq', 'invalid_value'],
    ['an exists that is not a boolean', { where: { myId: { exists: 'yes' } } }, DEVICE_FILTER, 'filter.where.myId.exists', 'invalid_value'],
    ['an empty or', { where: { or: [] } }, DEVICE_FILTER, 'filter.where.or', 'invalid_where'],
    ['an and that is not a list', { where: { and: { myId: 'a' } } }, DEVICE_FILTER, 'filter.where.and', 'invalid_where'],
    ['a where that is a list', { where: [{ myId: 'a' }] }, DEVICE_FILTER, 'filter.where', 'invalid_where'],
    ['a filter that is a list', [{ limit: 1 }], DEVICE_FILTER, 'filter', 'invalid_filter'],
    ['a filter that is a string', 'limit=1', DEVICE_FILTER, 'filter', 'invalid_filter'],
    ['limit 0', { limit: 0 }, DEVICE_FILTER, 'filter.limit', 'out_of_range'],
    ['limit 1001', { limit: 1001 }, DEVICE_FILTER, 'filter.limit', 'out_of_range'],
    ['a fractional limit', { limit: 2.5 }, DEVICE_FILTER, 'filter.limit', 'out_of_range'],
    ['a negative limit string', { limit: '-1' }, DEVICE_FILTER, 'filter.limit', 'out_of_range'],
    ['a non-numeric limit', { limit: 'all' }, DEVICE_FILTER, 'filter.limit', 'out_of_range'],
    ['a negative skip', { skip: -1 }, DEVICE_FILTER, 'filter.skip', 'out_of_range'],
    ['a negative offset', { offset: -5 }, DEVICE_FILTER, 'filter.offset', 'out_of_range'],
    ['skip and offset together', { skip: 1, offset: 2 }, DEVICE_FILTER, 'filter.offset', 'conflict'],
    ['an unknown field in fields', { fields: ['myId', 'secret'] }, DEVICE_FILTER, 'filter.fields[1]', 'unknown_field'],
    ['a non-string in fields', { fields: ['myId', 3] }, DEVICE_FILTER, 'filter.fields[1]', 'invalid_field'],
    ['a fields flag that is not a boolean', { fields: { myId: 'maybe' } }, DEVICE_FILTER, 'filter.fields.myId', 'invalid_value'],
    ['mixed inclusion and exclusion', { fields: { myId: true, deviceUID: false } }, DEVICE_FILTER, 'filter.fields', 'invalid_fields'],
    ['fields of a number', { fields: 5 }, DEVICE_FILTER, 'filter.fields', 'invalid_fields'],
    ['an order on an unknown field', { order: 'secret DESC' }, DEVICE_FILTER, 'filter.order', 'unknown_field'],
    ['an order with a bad direction', { order: ['myId UP'] }, DEVICE_FILTER, 'filter.order[0]', 'invalid_order'],
    ['an order that is an object', { order: { myId: 1 } }, DEVICE_FILTER, 'filter.order', 'invalid_order'],
    ['include on devices', { include: 'devices' }, DEVICE_FILTER, 'filter.include', 'unknown_relation'],
    ['an unknown relation', { include: 'owners' }, ACCOUNT_FILTER, 'filter.include', 'unknown_relation'],
    [
      'an unknown relation in a list',
      { include: ['devices', { relation: 'owners' }] },
      ACCOUNT_FILTER,
      'filter.include[1]',
      'unknown_relation',
    ],
    ['an include without relation', { include: { scope: {} } }, ACCOUNT_FILTER, 'filter.include', 'unknown_relation'],
    [
      'an unknown key beside relation',
      { include: { relation: 'devices', where: {} } },
      ACCOUNT_FILTER,
      'filter.include.where',
      'unknown_key',
    ],
    [
      'include inside a scope',
      { include: { relation: 'devices', scope: { include: 'devices' } } },
      ACCOUNT_FILTER,
      'filter.include.scope.include',
      'unknown_key',
    ],
    [
      'a scope limit of 0',
      { include: { relation: 'devices', scope: { limit: 0 } } },
      ACCOUNT_FILTER,
      'filter.include.scope.limit',
      'out_of_range',
    ],
    [
      'an account field in a scope where',
      { include: { relation: 'devices', scope: { where: { name: 'a' } } } },
      ACCOUNT_FILTER,
      'filter.include.scope.where.name',
      'unknown_field',
    ],
  ])('refuses %s', (_case, raw, spec, path, code) => {
    expectRejected(() => parseFilter(raw, spec), path, code);
  });

  it('accepts exactly 1000 inq values, 256-character patterns and nesting to level 12', () => {
    expect(parseFilter({ where: { myId: { inq: Array.from({ length: 1000 }, (_, i) => `d${i}`) } } }, DEVICE_FILTER).where.myId).toEqual({
      $in: expect.arrayContaining(['d0', 'd999']),
    });
    expect(parseFilter({ where: { myId: { like: 'a'.repeat(256) } } }, DEVICE_FILTER).where.myId).toEqual({
      $regex: 'a'.repeat(256),
      $options: '',
    });
    // where (1), five and-levels of list + item (11), the field (12) holding a string.
    const deepest = parseFilter({ where: nestedAnd(5, { myId: 'x' }) }, DEVICE_FILTER).where;
    expect(deepest).toStrictEqual({ $and: [{ $and: [{ $and: [{ $and: [{ $and: [{ myId: 'x' }] }] }] }] }] });
    // Below `where` itself: five and-levels (10), the field (11), the operator (12).
    expect(parseWhere(nestedAnd(5, { myId: { neq: 'x' } }), DEVICE_FILTER)).toStrictEqual({
      $and: [{ $and: [{ $and: [{ $and: [{ $and: [{ myId: { $ne: 'x' } }] }] }] }] }],
    });
  });

  it('accepts and/or three deep with operators inside (bug: refused as nesting deeper than 8)', () => {
    const where = {
      and: [
        { name: { like: '^a' } },
        { or: [{ name: 'b' }, { and: [{ deviceIds: { inq: [HEX, HEX2] } }, { createdAt: { between: ['2024-01-01', '2025-01-01'] } }] }] },
      ],
    };
    expect(parseFilter({ where }, ACCOUNT_FILTER).where).toStrictEqual({
      $and: [
        { name: { $regex: '^a', $options: '' } },
        {
          $or: [
            { name: 'b' },
            {
              $and: [
                { deviceIds: { $in: [oid(HEX), oid(HEX2)] } },
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
      () => parseFilter({ where: nestedAnd(5, { myId: { neq: 'x' } }) }, DEVICE_FILTER),
      `filter.where${'.and[0]'.repeat(5)}.myId.neq`,
      'too_deep',
    );
    expectRejected(() => parseWhere(nestedAnd(6, { myId: 'x' }), DEVICE_FILTER), `where${'.and[0]'.repeat(6)}.myId`, 'too_deep');
    // LoopBack's own case: nine and-levels under where, refused at maxDepthOfQuery 12.
    expectRejected(() => parseFilter({ where: nestedAnd(9, { x: 1 }) }, DEVICE_FILTER), `filter.where${'.and[0]'.repeat(6)}`, 'too_deep');
  });

  it('refuses a deep object of unknown shape without walking it further', () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let level = 0; level < 50; level += 1) deep = { nested: deep };
    const { details } = rejection(() => parseFilter({ where: deep }, DEVICE_FILTER));
    expect(details).toEqual([{ path: `filter.where${'.nested'.repeat(12)}`, code: 'too_deep', message: expect.any(String) }]);
  });

  it('reports every problem at once', () => {
    const { details } = rejection(() =>
      parseFilter({ where: { owner: 'a', myId: { near: 'b' } }, limit: 0, skip: 1, offset: 1 }, DEVICE_FILTER),
    );
    expect(details.map((detail) => `${detail.path} ${detail.code}`).sort()).toEqual(
      [
        'filter.limit out_of_range',
        'filter.offset conflict',
        'filter.where.myId.near unknown_operator',
        'filter.where.owner unknown_field',
      ].sort(),
    );
  });

  it('reports forbidden keys before translating anything', () => {
    const { details } = rejection(() => parseFilter({ where: { myId: { $ne: 'a' }, owner: 'b' } }, DEVICE_FILTER));
    expect(details).toEqual([{ path: 'filter.where.myId.$ne', code: 'forbidden_key', message: expect.any(String) }]);
  });

  it('reads objects without a prototype, as the bracket form gives them', () => {
    const where = Object.assign(Object.create(null) as Record<string, unknown>, {
      myId: Object.assign(Object.create(null) as object, { inq: ['a', 'b'] }),
    });
    const filter = Object.assign(Object.create(null) as Record<string, unknown>, {
      where,
      limit: '2',
      fields: Object.assign(Object.create(null) as object, { myId: 'true' }),
    });
    expect(parseFilter(filter, DEVICE_FILTER)).toEqual({
      where: { myId: { $in: ['a', 'b'] } },
      fields: { myId: 1 },
      order: undefined,
      limit: 2,
      skip: 0,
      include: [],
    });
  });

  it('refuses __proto__ held as an own key of an object without a prototype', () => {
    const where = Object.create(null) as Record<string, unknown>;
    where['__proto__'] = { polluted: 'yes' };
    expectRejected(() => parseFilter({ where }, DEVICE_FILTER), 'filter.where.__proto__', 'forbidden_key');
    expectRejected(() => parseWhere(where, ACCOUNT_FILTER), 'where.__proto__', 'forbidden_key');
  });

  it('leaves Object.prototype untouched by a __proto__ filter', () => {
    expect(() => parseFilter(JSON.parse('{"where":{"myId":{"__proto__":{"polluted":"yes"}}}}'), DEVICE_FILTER)).toThrow(
      BadRequestException,
    );
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
    const { details, message } = rejection(() => parseFilter(raw, ACCOUNT_FILTER));
    expect(details).toEqual([{ path, code: 'forbidden_value', message: expect.stringContaining('starting with $ are refused') }]);
    expect(message).toContain('$ are refused');
  });

  it('says the same for $ keys', () => {
    const { details } = rejection(() => parseFilter({ where: { $where: '1' } }, ACCOUNT_FILTER));
    expect(details).toEqual([
      { path: 'filter.where.$where', code: 'forbidden_key', message: expect.stringContaining('starting with $ are refused') },
    ]);
  });

  it('keeps a $ in a value to compare with: it is data, never an operator', () => {
    expect(parseFilter({ where: { name: '$natural' } }, ACCOUNT_FILTER).where).toStrictEqual({ name: '$natural' });
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
      expectRejected(() => parseWhere({ myId: { [operator]: pattern } }, DEVICE_FILTER), `where.myId.${operator}`, 'invalid_pattern');
    }
    expectRejected(() => parseWhere({ myId: { regexp: `/${pattern}/i` } }, DEVICE_FILTER), 'where.myId.regexp', 'invalid_pattern');
  });

  it.each([
    ['a backreference', '(a+)\\1'],
    ['a repetition count above 100', '(.*){1,32000}[bc]'],
    ['optional parts that combine in more than 100 ways', 'a?a?a?a?a?a?a?a?aaaaaaaa'],
  ])('refuses %s as unsafe_pattern before anything else runs', (_case, pattern) => {
    expectRejected(() => parseWhere({ name: { like: pattern } }, ACCOUNT_FILTER), 'where.name.like', 'unsafe_pattern');
  });

  it('hands every accepted pattern, with its path and flags, to the ReDoS check', () => {
    const patterns: PatternUse[] = [];
    parseFilter(
      {
        where: { or: [{ name: { ilike: '^a' } }, { name: { regexp: '/b+/m' } }] },
        include: { relation: 'devices', scope: { where: { myId: { nlike: 'c', options: 's' } } } },
      },
      ACCOUNT_FILTER,
      'filter',
      patterns,
    );
    expect(patterns).toEqual([
      { path: 'filter.include.scope.where.myId.nlike', checkSource: 'c', flags: 's' },
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
    parseWhere(where, ACCOUNT_FILTER, 'where', patterns);
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
    ['$where', { $where: '1' }, DEVICE_FILTER, 'where.$where', 'forbidden_key'],
    ['a raw $ne on name', { name: { $ne: null } }, ACCOUNT_FILTER, 'where.name.$ne', 'forbidden_key'],
    ['__proto__', JSON.parse('{"__proto__":{"x":1}}'), ACCOUNT_FILTER, 'where.__proto__', 'forbidden_key'],
    ['an unknown field', { colour: 'red' }, DEVICE_FILTER, 'where.colour', 'unknown_field'],
    ['an unknown operator', { name: { contains: 'a' } }, ACCOUNT_FILTER, 'where.name.contains', 'unknown_operator'],
    ['a filter key in a where', { limit: 1 }, DEVICE_FILTER, 'where.limit', 'unknown_field'],
    ['an unknown field in or', { or: [{ myId: 'a' }, { nope: 1 }] }, DEVICE_FILTER, 'where.or[1].nope', 'unknown_field'],
    ['a where that is a string', 'myId=a', DEVICE_FILTER, 'where', 'invalid_where'],
    ['1001 inq values', { _id: { inq: Array.from({ length: 1001 }, () => HEX) } }, ACCOUNT_FILTER, 'where._id.inq', 'too_many_values'],
  ])('refuses %s', (_case, raw, spec, path, code) => {
    expectRejected(() => parseWhere(raw, spec), path, code);
  });
});

describe('readQueryObject', () => {
  it('parses JSON and passes bracket-form objects through', () => {
    expect(readQueryObject('{"limit":2}', 'filter')).toEqual({ limit: 2 });
    const bracket = { where: { myId: 'a' } };
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
