import { STATUS_CODES } from 'node:http';
import { type ErrorDetail, type ErrorResponse } from '../dto/error-response.dto.js';

/** One way a route can fail, as a client sees it: the status and the body it gets. */
export interface ErrorCase {
  status: number;
  /** Key of the example in the document: a short camelCase name (`notFound`). */
  name: string;
  message: string;
  details?: ErrorDetail[];
}

/** The body the global exception filter writes for `error` (DESIGN.md, Errors). */
export function errorBody({ status, message, details }: ErrorCase): ErrorResponse {
  return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, ...(details ? { details } : {}) };
}

/** An error whose `details` has one entry that repeats the message. */
export function fieldError(status: number, name: string, path: string, code: string, message: string): ErrorCase {
  return { status, name, message, details: [{ path, code, message }] };
}
