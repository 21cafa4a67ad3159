import { describe, expect, it } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { Types } from 'mongoose';
import { ParsePositionPipe, placeIn, type Position, sameList } from './position.js';

// Ids named by letter: `id('b')` is always the same ObjectId.
const id = (letter: string) => new Types.ObjectId(letter.charCodeAt(0).toString(16).padStart(24, '0'));
const ids = (letters: string) => [...letters].map(id);
const letters = (list: readonly Types.ObjectId[]) => list.map((value) => String.fromCharCode(parseInt(value.toHexString(), 16))).join('');

describe('placeIn', () => {
  // `list + placed at where = expected @index`, lists as letters, `-` for an empty one.
  it.each([
    'abc + x at start = xabc @0',
    'abc + x at end = abcx @3',
    'abc + x at before b = axbc @1',
    'abc + x at after b = abxc @2',
    'abc + x at after c = abcx @3',
    'abc + x at before a = xabc @0',
    '- + xy at start = xy @0',
    'abc + xy at before c = abxyc @2',
    'abcd + c at start = cabd @0',
    'abcd + a at end = bcda @3',
    'abcd + a at after c = bcad @2',
    'abcd + da at before b = dabc @0',
    'abcd + ax at after d = bcdax @3',
    'abc + - at after b = abc @2',
  ])('%s', (row) => {
    const [, list, placed, at, anchor, expected, index] = /^(\w+|-) \+ (\w+|-) at (\w+)(?: (\w))? = (\w+) @(\d+)$/.exec(row)!;
    const letter = (value: string) => (value === '-' ? '' : value);
    const placement = placeIn(ids(letter(list)), ids(letter(placed)), at as Position['at'], anchor ? id(anchor) : undefined);
    expect('list' in placement && { list: letters(placement.list), index: placement.index }).toEqual({
      list: expected,
      index: Number(index),
    });
  });

  it('gives what is already in place back unchanged (a second request writes nothing)', () => {
    for (const [list, placed, at, anchor] of [
      ['xabc', 'x', 'start', undefined],
      ['abcx', 'x', 'end', undefined],
      ['axbc', 'x', 'before', 'b'],
      ['abxyc', 'xy', 'after', 'b'],
    ] as const) {
      const placement = placeIn(ids(list), ids(placed), at, anchor ? id(anchor) : undefined);
      expect('list' in placement && sameList(placement.list, ids(list))).toBe(true);
    }
  });

  it('refuses an anchor that is not in the list, or is among the ids placed', () => {
    expect(placeIn(ids('abc'), ids('x'), 'before', id('z'))).toEqual({ problem: 'anchor_not_linked' });
    expect(placeIn(ids('abc'), ids('xb'), 'after', id('b'))).toEqual({ problem: 'anchor_placed' });
    expect(placeIn(ids('abc'), ids('b'), 'before', id('b'))).toEqual({ problem: 'anchor_placed' });
  });

  it('never repeats an id and keeps every other one in its order', () => {
    const list = ids('abcdefgh');
    for (const placed of ['', 'a', 'h', 'dz', 'hgf', 'xyz']) {
      for (const at of ['start', 'end', 'before', 'after'] as const) {
        const anchor = at === 'before' || at === 'after' ? id('e') : undefined;
        const placement = placeIn(list, ids(placed), at, anchor);
        if (!('list' in placement)) continue;
        const result = letters(placement.list);
        expect(new Set(result).size).toBe(result.length);
        expect([...result].filter((letter) => !placed.includes(letter)).join('')).toBe(
          [...'abcdefgh'].filter((l) => !placed.includes(l)).join(''),
        );
        expect(result).toContain(placed);
      }
    }
  });
});

describe('ParsePositionPipe', () => {
  const pipe = new ParsePositionPipe(
    (value) => (typeof value === 'string' && /^[a-z]+$/.test(value) ? { slug: value } : undefined),
    'a slug',
  );
  const metadata = { type: 'query' as const, data: 'position' };

  it.each<[unknown, Position | undefined]>([
    [undefined, undefined],
    ['start', { at: 'start' }],
    ['end', { at: 'end' }],
    ['before:lamp', { at: 'before', anchor: { slug: 'lamp' } }],
    ['after:lamp', { at: 'after', anchor: { slug: 'lamp' } }],
  ])('reads %j', (value, expected) => {
    expect(pipe.transform(value, metadata)).toEqual(expected);
  });

  it.each(['', 'first', 'Start', 'before', 'before:', 'after:LAMP', 'beside:lamp', ' start', ['start', 'end'], 1])(
    'refuses %j with a 400 naming it and saying what is accepted',
    (value) => {
      expect.assertions(2);
      try {
        pipe.transform(value, metadata);
      } catch (error) {
        expect(error).toBeInstanceOf(BadRequestException);
        expect((error as BadRequestException).getResponse()).toMatchObject({
          details: [{ path: 'position', code: 'invalid_position', message: expect.stringContaining('a slug') }],
        });
      }
    },
  );
});
