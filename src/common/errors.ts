import { BadRequestException, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
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

export function unprocessable(message: string, details?: ErrorDetail[]): UnprocessableEntityException {
  return new UnprocessableEntityException({ message, details });
}
