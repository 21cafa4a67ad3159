import { describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { Types } from 'mongoose';
import { entityTagOf, isNotModified, MAX_ENTITY_TAGS, parseEntityTags, versionCondition } from './entity-tags.js';

const ID = '6650c0ffee0000000000a001';
const OTHER = '6650c0ffee0000000000a002';

describe('parseEntityTags', () => {
  it.each<[string, ReturnType<typeof parseEntityTags>]>([
    ['*', '*'],
    ['  *  ', '*'],
    ['"a"', [{ weak: false, opaque: '"a"' }]],
    ['W/"a"', [{ weak: true, opaque: '"a"' }]],
    [
      '"a", W/"b" ,"c"',
      [
        { weak: false, opaque: '"a"' },
        { weak: true, opaque: '"b"' },
        { weak: false, opaque: '"c"' },
      ],
    ],
    [
      '"", "x"',
      [
        { weak: false, opaque: '""' },
        { weak: false, opaque: '"x"' },
      ],
    ],
    ['"a,b"', [{ weak: false, opaque: '"a,b"' }]],
    [
      ', "a",, "b",',
      [
        { weak: false, opaque: '"a"' },
        { weak: false, opaque: '"b"' },
      ],
    ],
    [`"${ID}-3"`, [{ weak: false, opaque: `"${ID}-3"` }]],
  ])('reads %j', (header, expected) => {
    expect(parseEntityTags(header, 'If-Match')).toEqual(expected);
  });

  it('reads a header sent twice as one list', () => {
    expect(parseEntityTags(['"a"', '"b"'], 'If-Match')).toEqual([
      { weak: false, opaque: '"a"' },
      { weak: false, opaque: '"b"' },
    ]);
  });

  it('is undefined for a header not sent', () => {
    expect(parseEntityTags(undefined, 'If-Match')).toBeUndefined();
  });

  it.each(['', ' ', ',', 'a', '"a', 'a"', 'W/a', 'w/"a"', '"a" "b"', '*, "a"', '"a", *', '"a"b', '"a b"', '"a\tb"', 'W/ "a"'])(
    'refuses %j with a 400 naming the header',
    (header) => {
      expect.assertions(2);
      try {
        parseEntityTags(header, 'If-None-Match');
      } catch (error) {
        expect(error).toBeInstanceOf(BadRequestException);
        expect((error as BadRequestException).getResponse()).toMatchObject({
          details: [{ path: 'If-None-Match', code: 'invalid_entity_tag' }],
        });
      }
    },
  );

  it(`refuses more than ${MAX_ENTITY_TAGS} tags`, () => {
    const tags = (n: number) => Array.from({ length: n }, (_, i) => `"${i}"`).join(', ');
    expect(parseEntityTags(tags(MAX_ENTITY_TAGS), 'If-Match')).toHaveLength(MAX_ENTITY_TAGS);
    expect(() => parseEntityTags(tags(MAX_ENTITY_TAGS + 1), 'If-Match')).toThrow(BadRequestException);
  });
});

describe('entityTagOf', () => {
  it('is the ObjectId and the revision, quoted: a strong tag', () => {
    expect(entityTagOf({ _id: new Types.ObjectId(ID), rev: 12 })).toBe(`"${ID}-12"`);
  });

  it('counts a document stored without a revision as revision 0', () => {
    expect(entityTagOf({ _id: new Types.ObjectId(ID) })).toBe(`"${ID}-0"`);
  });
});

describe('versionCondition', () => {
  it('adds nothing without the header or for *', () => {
    expect(versionCondition(undefined)).toEqual({});
    expect(versionCondition('*')).toEqual({});
  });

  it('names each version its strong tags give, by ObjectId and revision', () => {
    const condition = versionCondition(parseEntityTags(`"${ID}-4", "${OTHER}-9"`, 'If-Match'));
    expect(condition).toEqual({
      $or: [
        { _id: new Types.ObjectId(ID), rev: 4 },
        { _id: new Types.ObjectId(OTHER), rev: 9 },
      ],
    });
  });

  it('lets revision 0 also match a document stored before it had one', () => {
    expect(versionCondition(parseEntityTags(`"${ID}-0"`, 'If-Match'))).toEqual({
      $or: [{ _id: new Types.ObjectId(ID), rev: { $in: [0, null] } }],
    });
  });

  it('matches no document when no tag names a version: weak tags, and tags the service does not make', () => {
    for (const header of [`W/"${ID}-4"`, '"abc"', `"${ID}-x"`, `"${ID.toUpperCase()}-1"`, `"${ID}-1-2"`, '""']) {
      expect(versionCondition(parseEntityTags(header, 'If-Match'))).toEqual({ rev: { $in: [] } });
    }
  });
});

describe('isNotModified', () => {
  const current = `"${ID}-2"`;

  it('compares weakly: a weak tag with the same opaque tag matches', () => {
    expect(isNotModified(parseEntityTags(`W/${current}`, 'If-None-Match'), current)).toBe(true);
    expect(isNotModified(parseEntityTags(`"x", ${current}`, 'If-None-Match'), current)).toBe(true);
    expect(isNotModified('*', current)).toBe(true);
  });

  it('is false for other versions and without the header', () => {
    expect(isNotModified(parseEntityTags(`"${ID}-1"`, 'If-None-Match'), current)).toBe(false);
    expect(isNotModified(undefined, current)).toBe(false);
  });
});
