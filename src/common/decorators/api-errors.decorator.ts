import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';
import { ErrorResponse } from '../dto/error-response.dto.js';

const MEANING: Record<number, string> = {
  400: 'Malformed input; `details` names each offending field',
  404: 'Unknown resource',
  409: 'A unique value (myId, deviceUID) is already taken',
  422: 'Well-formed, but breaks a relation rule; `details` names each offending id',
  503: 'The database is unavailable',
};

/** Documents the error responses of a route, all in the one error shape. */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) => ApiResponse({ status, description: MEANING[status] ?? STATUS_CODES[status], type: ErrorResponse })),
  );
}
