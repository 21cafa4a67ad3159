import { describe, expect, it } from '@jest/globals';
import { BadRequestException, type ValidationError } from '@nestjs/common';
import { plainToInstance, Type } from 'class-transformer';
import { IsArray, IsInt, IsOptional, IsString, validate, ValidateNested } from 'class-validator';
import { flattenValidationErrors, validationExceptionFactory } from './validation-exception.factory.js';

function node(property: string, constraints?: Record<string, string>, children?: ValidationError[]): ValidationError {
  return { property, constraints, children };
}

/** A property with no constraint of its own, holding `children`. */
const parent = (property: string, ...children: ValidationError[]) => node(property, undefined, children);
const detail = (path: string, code: string, message: string) => ({ path, code, message });

describe('flattenValidationErrors', () => {
  it.each<[string, ValidationError[], Array<{ path: string; code: string; message: string }>]>([
    ['no errors', [], []],
    ['a top-level field', [node('name', { isString: 'name must be a string' })], [detail('name', 'isString', 'name must be a string')]],
    [
      'two constraints on one field, in order',
      [node('name', { isLength: 'name is too long', isString: 'name must be a string' })],
      [detail('name', 'isLength', 'name is too long'), detail('name', 'isString', 'name must be a string')],
    ],
    ['an array element', [parent('ids', node('2', { isMongoId: 'bad id' }))], [detail('ids[2]', 'isMongoId', 'bad id')]],
    [
      'a multi-digit array index',
      [parent('ids', node('10', { isString: 'not a string' }))],
      [detail('ids[10]', 'isString', 'not a string')],
    ],
    [
      'a nested object field',
      [parent('scope', node('where', { isObject: 'where must be an object' }))],
      [detail('scope.where', 'isObject', 'where must be an object')],
    ],
    [
      'a field whose name only starts with a digit',
      [parent('scope', node('1st', { isString: 'not a string' }))],
      [detail('scope.1st', 'isString', 'not a string')],
    ],
    [
      'an object inside an array inside an object',
      [parent('include', parent('0', parent('scope', node('where', { isObject: 'bad where' }))))],
      [detail('include[0].scope.where', 'isObject', 'bad where')],
    ],
    [
      'an array inside an array',
      [parent('matrix', parent('1', node('0', { isInt: 'not an integer' })))],
      [detail('matrix[1][0]', 'isInt', 'not an integer')],
    ],
    [
      'a parent constraint before its children',
      [node('items', { arrayMaxSize: 'too many items' }, [node('3', { isString: 'not a string' })])],
      [detail('items', 'arrayMaxSize', 'too many items'), detail('items[3]', 'isString', 'not a string')],
    ],
    [
      'several siblings, in order',
      [node('a', { isString: 'a bad' }), node('b', { isInt: 'b bad' })],
      [detail('a', 'isString', 'a bad'), detail('b', 'isInt', 'b bad')],
    ],
    [
      'a top-level property that is a digit (a body sent as an array)',
      [node('0', { whitelistValidation: 'property 0 should not exist' })],
      [detail('0', 'unknown_property', '0 is not a known property')],
    ],
  ])('flattens %s', (_case, errors, details) => {
    expect(flattenValidationErrors(errors)).toEqual(details);
  });

  it.each([
    ['at the top level', [node('extra', { whitelistValidation: 'property extra should not exist' })], 'extra'],
    ['inside a nested object', [node('scope', undefined, [node('extra', { whitelistValidation: 'x' })])], 'scope.extra'],
    [
      'inside an array element',
      [node('items', undefined, [node('1', undefined, [node('extra', { whitelistValidation: 'x' })])])],
      'items[1].extra',
    ],
  ])('reports an unknown property %s as code unknown_property naming its path', (_case, errors, path) => {
    expect(flattenValidationErrors(errors)).toEqual([{ path, code: 'unknown_property', message: `${path} is not a known property` }]);
  });

  describe('with the errors class-validator really produces', () => {
    class Item {
      @IsString()
      name: string;

      @IsOptional()
      @IsInt()
      size?: number;
    }

    class Body {
      @IsArray()
      @IsString({ each: true })
      ids: string[];

      @IsArray()
      @ValidateNested({ each: true })
      @Type(() => Item)
      items: Item[];
    }

    it('names nested array paths and unknown properties', async () => {
      const body = plainToInstance(Body, { ids: ['a'], items: [{ name: 'ok' }, { name: 5, extra: true }], stray: 1 });
      const errors = await validate(body, { whitelist: true, forbidNonWhitelisted: true });
      const details = flattenValidationErrors(errors);
      expect(details).toEqual(
        expect.arrayContaining([
          { path: 'stray', code: 'unknown_property', message: 'stray is not a known property' },
          { path: 'items[1].name', code: 'isString', message: expect.any(String) },
          { path: 'items[1].extra', code: 'unknown_property', message: 'items[1].extra is not a known property' },
        ]),
      );
      expect(details).toHaveLength(3);
    });
  });
});

describe('validationExceptionFactory', () => {
  it('builds a 400 whose message joins the detail messages', () => {
    const exception = validationExceptionFactory([
      node('name', { isString: 'name must be a string' }),
      node('extra', { whitelistValidation: 'x' }),
    ]);
    expect(exception).toBeInstanceOf(BadRequestException);
    expect(exception.getStatus()).toBe(400);
    expect(exception.getResponse()).toEqual({
      message: 'name must be a string; extra is not a known property',
      details: [
        { path: 'name', code: 'isString', message: 'name must be a string' },
        { path: 'extra', code: 'unknown_property', message: 'extra is not a known property' },
      ],
    });
  });

  it('falls back to a generic message when no constraint carries one', () => {
    const exception = validationExceptionFactory([node('scope')]);
    expect(exception.getResponse()).toEqual({ message: 'Invalid request', details: [] });
  });
});
