export class ErrorDetail {
  /** Where the problem is: a body field (`ids[2]`), a path parameter or a query key. */
  path: string;

  /** A stable, machine-readable reason, e.g. `duplicate`, `isString`, `out_of_range`. */
  code: string;

  message: string;
}

/** The one error shape of every 4xx and 5xx response (DESIGN.md, Errors). */
export class ErrorResponse {
  /** @example 400 */
  statusCode: number;

  /** @example "Bad Request" */
  error: string;

  /** @example "filter.limit: must be an integer from 1 to 1000" */
  message: string;

  /** Present when there is something to say per field. */
  details?: ErrorDetail[];
}
