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

/** An error without `details`. */
export function errorCase(status: number, name: string, message: string): ErrorCase {
  return { status, name, message };
}

/** An error whose `details` has one entry that repeats the message. */
export function fieldError(status: number, name: string, path: string, code: string, message: string): ErrorCase {
  return { status, name, message, details: [{ path, code, message }] };
}

/** The 400 for a malformed path parameter (`id`, `fk`) that must be `rule`, as its pipe throws it and the docs show it. */
export function malformedParam(path: string, code: string, rule: string): ErrorCase {
  return fieldError(400, `malformed${path[0].toUpperCase()}${path.slice(1)}`, path, code, `${path} must be ${rule}`);
}
