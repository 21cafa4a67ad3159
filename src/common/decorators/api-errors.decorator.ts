import { PATH_METADATA } from '@nestjs/common/constants.js';
import { DECORATORS, ApiResponse } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';
import { ErrorResponse } from '../dto/error-response.dto.js';
import { type ErrorCase, errorBody, fieldError } from '../openapi/error-example.js';

const MEANING: Record<number, string> = {
  400: 'Malformed input; `details` names each offending field',
  404: 'Unknown resource',
  409: 'A unique value is already taken',
  412: 'The document is no longer at the version If-Match names; nothing was written',
  422: 'Well-formed, but breaks a relation rule; `details` names each offending id',
  503: 'The database is unavailable, or did not answer in time',
};

/**
 * What a bare status stands for. A bare 400 is about the body; path parameters and query
 * strings document their own 400s with the decorators that read them.
 */
const TYPICAL: Record<number, ErrorCase> = {
  400: fieldError(400, 'unknownProperty', 'colour', 'unknown_property', 'colour is not a known property'),
  503: { status: 503, name: 'databaseUnavailable', message: 'The database is unavailable; try again shortly' },
};

/**
 * Documents error responses in the one error shape, each status with examples of its own.
 * A bare status takes its typical example; an `ErrorCase` adds a route's own. Several cases of
 * one status become named examples of that one response, whichever decorator adds them.
 */
export function ApiErrors(...cases: Array<number | ErrorCase>): MethodDecorator & ClassDecorator {
  const errors = cases.map((entry) => {
    const error = typeof entry === 'number' ? TYPICAL[entry] : entry;
    if (!error) throw new Error(`ApiErrors: no typical example for ${String(entry)}; pass an ErrorCase`);
    return error;
  });
  const decorator = (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (descriptor) {
      for (const error of errors) addError(target, key!, descriptor, error);
      return descriptor;
    }
    // On a controller: added to each route, so that a route's own examples of the same status
    // join the controller's instead of replacing them (Swagger merges the two levels by status).
    const prototype = (target as { prototype: object }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const method = Object.getOwnPropertyDescriptor(prototype, name)!;
      if (typeof method.value !== 'function' || Reflect.getMetadata(PATH_METADATA, method.value) === undefined) continue;
      for (const error of errors) addError(prototype, name, method, error);
    }
    return target;
  };
  return decorator as MethodDecorator & ClassDecorator;
}

function addError(target: object, key: string | symbol, descriptor: PropertyDescriptor, error: ErrorCase): void {
  const documented = (Reflect.getMetadata(DECORATORS.API_RESPONSE, descriptor.value as object) ?? {}) as Record<string, unknown>;
  const { status } = error;
  ApiResponse({
    status,
    type: ErrorResponse,
    // Said once per status; later cases only add their examples.
    description: documented[status] ? '' : (MEANING[status] ?? STATUS_CODES[status]),
    examples: { [error.name]: { summary: error.message, value: errorBody(error) } },
  })(target, key, descriptor);
}
