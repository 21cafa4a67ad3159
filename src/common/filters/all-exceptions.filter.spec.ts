import { describe, expect, it, jest } from '@jest/globals';
import { Logger, NotFoundException } from '@nestjs/common';
import mongoose from 'mongoose';
import { filterAnswer } from '../../../test/support/http.js';
import { duplicateKeyField } from './all-exceptions.filter.js';

const { MongoServerError } = mongoose.mongo;

/**
 * The message mongo-java-server 1.47 sends for a duplicate key, byte for byte (see the duplicate
 * key test in test/integration/database.spec.ts); MongoDB 7 words it the same and adds `keyValue`.
 */
const duplicateMessage = (index: string, key: string, value: string) =>
  `E11000 duplicate key error collection: refmany.items index: ${index} dup key: { ${key}: "${value}" }`;

describe('duplicateKeyField', () => {
  it.each([
    ['sku', { sku: 'x' }],
    ['serial', { serial: 'UID-1' }],
  ])('names %s from keyValue, as MongoDB reports it', (field, keyValue) => {
    const error = new MongoServerError({ message: duplicateMessage(`${field}_1`, field, 'x'), code: 11000, keyValue });
    expect(duplicateKeyField(error)).toBe(field);
  });

  it('prefers keyValue over the index named in the message', () => {
    const error = new MongoServerError({ message: duplicateMessage('sku_1', 'sku', 'x'), code: 11000, keyValue: { serial: 'u' } });
    expect(duplicateKeyField(error)).toBe('serial');
  });

  it.each([
    ['sku from the mongo-java-server message', duplicateMessage('sku_1', 'sku', 'x'), 'sku'],
    ['serial from the mongo-java-server message', duplicateMessage('serial_1', 'serial', 'UID-1'), 'serial'],
    ['a field from a descending index', duplicateMessage('sku_-1', 'sku', 'x'), 'sku'],
    ['a field whose name holds underscores', duplicateMessage('serial_code_1', 'serial_code', 'x'), 'serial_code'],
    ['a field whose name ends in a digit', duplicateMessage('serial2_1', 'serial2', 'x'), 'serial2'],
    ['a field from the dup key when no index is named', 'E11000 duplicate key error dup key: { sku: "x" }', 'sku'],
    ['a field from a quoted dup key', 'E11000 duplicate key error dup key: { "sku": "x" }', 'sku'],
    ['sku from the FerretDB message', "Duplicate key violation on the requested collection: Index 'sku_1'", 'sku'],
    ['serial from the FerretDB message', "Duplicate key violation on the requested collection: Index 'serial_1'", 'serial'],
  ])('names %s', (_case, message, field) => {
    const error = new MongoServerError({ message, code: 11000 });
    expect(error.keyValue).toBeUndefined();
    expect(duplicateKeyField(error)).toBe(field);
  });

  it('falls back to the message when keyValue is empty', () => {
    const error = new MongoServerError({ message: duplicateMessage('serial_1', 'serial', 'u'), code: 11000, keyValue: {} });
    expect(duplicateKeyField(error)).toBe('serial');
  });

  it('returns undefined when neither keyValue nor the message names a field', () => {
    const error = new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 });
    expect(duplicateKeyField(error)).toBeUndefined();
  });
});

describe('AllExceptionsFilter', () => {
  it.each([
    ['sku', 'sku_1'],
    ['serial', 'serial_1'],
  ])('answers a duplicate %s without keyValue with 409 naming the field', (field, index) => {
    const error = new MongoServerError({ message: duplicateMessage(index, field, 'x'), code: 11000 });
    expect(filterAnswer(error)).toEqual({
      status: 409,
      body: {
        statusCode: 409,
        error: 'Conflict',
        message: `${field} is already taken`,
        details: [{ path: field, code: 'duplicate', message: `${field} is already taken` }],
      },
    });
  });

  it('answers a duplicate key it cannot attribute with 409 and no details', () => {
    const error = new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 });
    expect(filterAnswer(error)).toEqual({
      status: 409,
      body: { statusCode: 409, error: 'Conflict', message: 'A unique value is already taken' },
    });
  });

  it('answers another server error with 500 and no stack, logging the stack instead', () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      const error = new MongoServerError({ message: 'something else', code: 2 });
      const { status, body } = filterAnswer(error);
      expect(status).toBe(500);
      expect(body).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'Internal server error' });
      expect(logged).toHaveBeenCalledWith('Internal server error', error.stack);
    } finally {
      logged.mockRestore();
    }
  });

  // The errors each engine sends for a pattern it cannot compile, as they arrive (issue: 500).
  it.each([
    ['mongo-java-server, [^]', { message: 'Unknown error: Unclosed character class near index 2\n[^]\n  ^' }, 'Unclosed character class'],
    ['mongo-java-server, a{', { message: 'Unknown error: Illegal repetition near index 2\na{' }, 'Illegal repetition'],
    [
      'FerretDB / DocumentDB, \\u{41}',
      { message: 'Regular expression is invalid: PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u', code: 51091 },
      'PCRE2 does not support',
    ],
    ['FerretDB / DocumentDB, a NUL byte', { message: 'Regular expression cannot contain an embedded null byte', code: 2 }, 'null byte'],
    ['MongoDB, by its code alone', { message: 'missing terminating ] for character class', code: 51091 }, 'missing terminating'],
  ])('answers an engine regex error (%s) with 400 invalid_pattern, without echoing the pattern', (_case, fields, reason) => {
    const { status, body } = filterAnswer(new MongoServerError(fields), { where: '{"name":{"like":"x"}}' });
    expect(status).toBe(400);
    expect(body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: expect.stringContaining(reason),
      details: [{ path: 'where', code: 'invalid_pattern', message: expect.stringContaining(reason) }],
    });
    expect(JSON.stringify(body)).not.toContain('\\n');
  });

  it('names filter for an engine regex error on a filter route', () => {
    const error = new MongoServerError({ message: 'Regular expression is invalid: missing )', code: 51091 });
    expect(filterAnswer(error, { filter: '{}' }).body).toMatchObject({ details: [{ path: 'filter', code: 'invalid_pattern' }] });
  });

  it('keeps the message and details of an HttpException', () => {
    const exception = new NotFoundException({ message: 'Item x not found', details: [{ path: 'id', code: 'unknown', message: 'm' }] });
    expect(filterAnswer(exception)).toEqual({
      status: 404,
      body: {
        statusCode: 404,
        error: 'Not Found',
        message: 'Item x not found',
        details: [{ path: 'id', code: 'unknown', message: 'm' }],
      },
    });
  });
});
