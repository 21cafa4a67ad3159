export class ErrorDetail {
  /** Where the problem is: a body field (`deviceIds[2]`), a path parameter or a query key. */
  path: string;

  /** A stable, machine-readable reason, e.g. `unknown_device`, `duplicate`, `isString`. */
  code: string;

  message: string;
}

/** The one error shape of every 4xx and 5xx response (DESIGN.md, Errors). */
export class ErrorResponse {
  /** @example 404 */
  statusCode: number;

  /** @example "Not Found" */
  error: string;

  /** @example "Account 6650c0ffee0000000000abcd not found" */
  message: string;

  /** Present when there is something to say per field. */
  details?: ErrorDetail[];
}
