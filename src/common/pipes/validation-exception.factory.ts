import { type ValidationError } from '@nestjs/common';
import { type ErrorDetail } from '../dto/error-response.dto.js';
import { badRequest } from '../errors.js';

const CODES: Record<string, string> = { whitelistValidation: 'unknown_property' };

/** class-validator's error tree as flat `details`, with paths like `ids[2]` and `scope.where`. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const path = !parent ? error.property : /^\d+$/.test(error.property) ? `${parent}[${error.property}]` : `${parent}.${error.property}`;
    const own = Object.entries(error.constraints ?? {}).map(([constraint, message]) => ({
      path,
      code: CODES[constraint] ?? constraint,
      message: constraint === 'whitelistValidation' ? `${path} is not a known property` : message,
    }));
    return [...own, ...flattenValidationErrors(error.children ?? [], path)];
  });
}

export function validationExceptionFactory(errors: ValidationError[]) {
  const details = flattenValidationErrors(errors);
  return badRequest(details.map((detail) => detail.message).join('; ') || 'Invalid request', details);
}
