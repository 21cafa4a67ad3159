import {
  BadRequestException,
  ConflictException,
  NotFoundException,
  PreconditionFailedException,
  ServiceUnavailableException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { type ErrorDetail } from './dto/error-response.dto.js';

/**
 * HttpExceptions whose body already has the DESIGN.md shape; the global filter adds
 * `statusCode` and `error`. Services throw these so controllers never build error bodies.
 */
export function badRequest(message: string, details?: ErrorDetail[]): BadRequestException {
  return new BadRequestException({ message, details });
}

export function notFound(message: string, details?: ErrorDetail[]): NotFoundException {
  return new NotFoundException({ message, details });
}

export function conflict(message: string, details?: ErrorDetail[]): ConflictException {
  return new ConflictException({ message, details });
}

/** A conditional write (If-Match) that found `resource` at another version than the request names; nothing was written. */
export function preconditionFailed(resource: string): PreconditionFailedException {
  const message = `If-Match: ${resource} has changed since that ETag was read; read it again`;
  return new PreconditionFailedException({ message, details: [{ path: 'If-Match', code: 'precondition_failed', message }] });
}

export function unprocessable(message: string, details?: ErrorDetail[]): UnprocessableEntityException {
  return new UnprocessableEntityException({ message, details });
}

/**
 * A write the engine gave up on because of a concurrent one: MongoDB's WriteConflict (112), or
 * PostgreSQL's deadlock or serialization failure under FerretDB. Retrying it is safe when the
 * write is idempotent; otherwise it is a 503.
 */
export function isWriteConflict(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === 112 || /deadlock detected|could not serialize access/i.test(String(message));
}

export function serviceUnavailable(message: string): ServiceUnavailableException {
  return new ServiceUnavailableException({ message });
}
