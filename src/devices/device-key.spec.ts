import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { describeDeviceKey, MY_ID_MAX_LENGTH, myIdProblem, parseDeviceKey, RESERVED_MY_IDS } from './device-key.js';

describe('myIdProblem', () => {
  it.each([
    ['a plain word', 'thermostat'],
    ['letters and digits', 'Sensor42'],
    ['a dot', 'kitchen.main'],
    ['an underscore', 'kitchen_main'],
    ['a colon', 'kitchen:main'],
    ['a hyphen', 'kitchen-main'],
    ['every allowed punctuation at once', 'a._:-b'],
    ['a single character', 'x'],
    ['exactly 128 characters', 'x'.repeat(MY_ID_MAX_LENGTH)],
    ['23 hexadecimal characters', 'a'.repeat(23)],
    ['25 hexadecimal characters', 'a'.repeat(25)],
    ['24 characters that are not all hexadecimal', 'g'.repeat(24)],
    ['a route word in another case', 'Count'],
    ['a route word with a suffix', 'rel-1'],
  ])('accepts %s', (_case, value) => {
    expect(myIdProblem(value)).toBeUndefined();
  });

  it.each([
    ['a number', 42, /string/],
    ['null', null, /string/],
    ['undefined', undefined, /string/],
    ['an array', ['a'], /string/],
    ['an empty string', '', /1–128 characters/],
    ['129 characters', 'x'.repeat(MY_ID_MAX_LENGTH + 1), /1–128 characters/],
    ['a space', 'has space', /1–128 characters/],
    ['a slash', 'a/b', /1–128 characters/],
    ['a percent sign', 'a%20b', /1–128 characters/],
    ['an at sign', 'a@b', /1–128 characters/],
    ['a non-ASCII letter', 'café', /1–128 characters/],
    ['a trailing newline', 'abc\n', /1–128 characters/],
    ['a lower-case 24-hex string', '0123456789abcdef01234567', /ObjectId/],
    ['an upper-case 24-hex string', '0123456789ABCDEF01234567', /ObjectId/],
  ])('rejects %s with a reason', (_case, value, reason) => {
    expect(myIdProblem(value)).toMatch(reason);
  });

  it.each(RESERVED_MY_IDS.map((word) => [word]))('rejects the route word %s', (word) => {
    expect(myIdProblem(word)).toMatch(/route words/);
  });

  it('reserves exactly the route words DESIGN.md lists', () => {
    expect([...RESERVED_MY_IDS].sort()).toEqual(['count', 'exists', 'findOne', 'rel']);
  });
});

describe('parseDeviceKey', () => {
  it.each([
    ['a lower-case 24-hex string', '0123456789abcdef01234567', '0123456789abcdef01234567'],
    ['an upper-case 24-hex string', '0123456789ABCDEF01234567', '0123456789abcdef01234567'],
  ])('reads %s as an ObjectId', (_case, value, hex) => {
    const key = parseDeviceKey(value);
    expect(key).toEqual({ _id: expect.any(Types.ObjectId) });
    expect(key && '_id' in key && key._id.toHexString()).toBe(hex);
  });

  it.each([
    ['a plain word', 'thermostat'],
    ['allowed punctuation', 'a._:-b'],
    ['128 characters', 'y'.repeat(128)],
    ['23 hexadecimal characters', 'b'.repeat(23)],
    ['25 hexadecimal characters', 'b'.repeat(25)],
  ])('reads %s as a myId', (_case, value) => {
    expect(parseDeviceKey(value)).toEqual({ myId: value });
  });

  it.each([
    ['129 characters', 'y'.repeat(129)],
    ['an empty string', ''],
    ['a space', 'a b'],
    ['a slash', 'a/b'],
    ['a route word', 'rel'],
    ['another route word', 'findOne'],
    ['a number', 5],
    ['null', null],
    ['an object', { $ne: null }],
  ])('returns undefined for %s', (_case, value) => {
    expect(parseDeviceKey(value)).toBeUndefined();
  });
});

describe('describeDeviceKey', () => {
  it.each([
    ['an ObjectId key as its hex string', { _id: new Types.ObjectId('0123456789abcdef01234567') }, '0123456789abcdef01234567'],
    ['a myId key as the myId', { myId: 'thermostat' }, 'thermostat'],
  ])('describes %s', (_case, key, text) => {
    expect(describeDeviceKey(key)).toBe(text);
  });
});
