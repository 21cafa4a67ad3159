import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { STATUS_CODES } from 'node:http';
import mongoose from 'mongoose';

const { MongoNetworkError, MongoServerError } = mongoose.mongo;
import { type ErrorDetail, type ErrorResponse } from '../dto/error-response.dto.js';
import { isWriteConflict } from '../errors.js';

const DUPLICATE_KEY = 11000;
/** The server stopped an operation at its maxTimeMS (DB_TIMEOUT_MS). */
const MAX_TIME_MS_EXPIRED = 50;

/**
 * Turns every error into the one DESIGN.md error shape. Errors that are not the client's fault
 * are logged with their stack and answered without it.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { statusCode, message, details } =
      engineRegexError(exception, () => host.switchToHttp().getRequest<{ query?: unknown }>().query) ?? this.describe(exception);
    // A 500 is a bug and is logged with its stack; a 503 is the database being away.
    if (statusCode === 500) this.logger.error(message, exception instanceof Error ? exception.stack : String(exception));
    else if (statusCode > 500) this.logger.warn(`${message} (${exception instanceof Error ? exception.message : String(exception)})`);

    const body: ErrorResponse = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
    if (details?.length) body.details = details;
    const { httpAdapter } = this.adapterHost;
    httpAdapter.reply(host.switchToHttp().getResponse(), body, statusCode);
  }

  private describe(exception: unknown): { statusCode: number; message: string; details?: ErrorDetail[] } {
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const response = exception.getResponse();
      if (typeof response === 'string') return { statusCode, message: response };
      const { message, details } = response as { message?: unknown; details?: ErrorDetail[] };
      const text = Array.isArray(message) ? message.join('; ') : typeof message === 'string' ? message : exception.message;
      return { statusCode, message: text, details };
    }
    if (exception instanceof mongoose.Error.ValidationError) {
      const details = Object.values(exception.errors).map((error) => ({
        path: error.path,
        code: error instanceof mongoose.Error.CastError ? 'invalid_type' : (error as mongoose.Error.ValidatorError).kind,
        message: error.message,
      }));
      return { statusCode: HttpStatus.BAD_REQUEST, message: details.map((d) => d.message).join('; '), details };
    }
    if (exception instanceof mongoose.Error.CastError) {
      const message = `${exception.path} must be a valid ${exception.kind}`;
      return { statusCode: HttpStatus.BAD_REQUEST, message, details: [{ path: exception.path, code: 'invalid_type', message }] };
    }
    if (exception instanceof MongoServerError && exception.code === DUPLICATE_KEY) {
      const field = duplicateKeyField(exception);
      const message = field ? `${field} is already taken` : 'A unique value is already taken';
      return { statusCode: HttpStatus.CONFLICT, message, details: field ? [{ path: field, code: 'duplicate', message }] : undefined };
    }
    if (exception instanceof MongoServerError && isWriteConflict(exception)) {
      return { statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'The database was busy with a conflicting write; try again' };
    }
    if (exception instanceof MongoServerError && exception.code === MAX_TIME_MS_EXPIRED) {
      return { statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'The database did not answer in time; try again shortly' };
    }
    if (isDatabaseUnreachable(exception)) {
      return { statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'The database is unavailable; try again shortly' };
    }
    const clientError = fastifyError(exception);
    if (clientError) return clientError;
    return { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: 'Internal server error' };
  }
}

/**
 * A pattern the engine refused to compile. The filter parser refuses every such pattern first
 * (filter.patterns.ts); this is the net under it, so an engine's own reading never becomes a
 * 500. MongoDB and DocumentDB (PCRE2) answer code 51091 "Regular expression is invalid: ..."
 * (DocumentDB answers a NUL byte with code 2 "Regular expression cannot contain an embedded
 * null byte"); mongo-java-server answers without a code, with Java's PatternSyntaxException
 * text: "Unknown error: Illegal repetition near index 1\n{".
 */
const INVALID_REGEX = 51091;
const ENGINE_REGEX_MESSAGE = /^(?:Regular expression (?:is invalid|cannot contain|is too long)|invalid flag in regex options)/;
const JAVA_PATTERN_SYNTAX = /^Unknown error: (.+?) near index -?\d+(?:\n|$)/;

export function engineRegexError(
  exception: unknown,
  queryOf: () => unknown,
): { statusCode: number; message: string; details: ErrorDetail[] } | undefined {
  if (!(exception instanceof MongoServerError)) return undefined;
  const java = JAVA_PATTERN_SYNTAX.exec(exception.message);
  if (exception.code !== INVALID_REGEX && !ENGINE_REGEX_MESSAGE.test(exception.message) && !java) return undefined;
  const reason = (java ? java[1] : exception.message.split('\n')[0]).slice(0, 200);
  // The engine does not say which pattern; the query parameter that carried the patterns does.
  const query = queryOf();
  const keys = typeof query === 'object' && query !== null ? Object.keys(query) : [];
  const path = keys.includes('where') && !keys.includes('filter') ? 'where' : 'filter';
  const message = `${path}: a pattern is not a regular expression the database engine accepts (${reason})`;
  return { statusCode: HttpStatus.BAD_REQUEST, message, details: [{ path, code: 'invalid_pattern', message }] };
}

/**
 * MongoDB names the field in `keyValue`; mongo-java-server does not, so fall back to the
 * index name in the message (`index: sku_1 dup key`), whose first segment is the field.
 */
export function duplicateKeyField(error: mongoose.mongo.MongoServerError): string | undefined {
  const keyValue = error.keyValue as Record<string, unknown> | undefined;
  if (keyValue && Object.keys(keyValue).length > 0) return Object.keys(keyValue)[0];
  const index =
    /index: ([\w.]+?)(?:_-?1)*\b/.exec(error.message)?.[1] ??
    /dup key: \{ ?"?([\w.]+)"?:/.exec(error.message)?.[1] ??
    // FerretDB: "Duplicate key violation on the requested collection: Index 'sku_1'"
    /Index '([\w.]+?)(?:_-?1)*'/.exec(error.message)?.[1];
  return index;
}

const UNREACHABLE = new Set([
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MongoServerClosedError',
]);

/** Socket errors that surface unwrapped when the database goes away mid-write. */
const SOCKET_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'ERR_STREAM_WRITE_AFTER_END']);

/** The driver could not reach the database, or Mongoose gave up waiting for it to return. */
function isDatabaseUnreachable(exception: unknown): boolean {
  if (typeof exception !== 'object' || exception === null) return false;
  // Read by its code, not by instanceof: Node's own socket errors may come from another realm.
  if (SOCKET_ERRORS.has(String((exception as { code?: unknown }).code))) return true;
  if (!(exception instanceof Error)) return false;
  if (UNREACHABLE.has(exception.name) || exception instanceof MongoNetworkError) return true;
  return exception instanceof mongoose.Error && /buffering timed out/.test(exception.message);
}

/**
 * Errors Fastify raises around a route (bad JSON, wrong content type, body too large), and its
 * handler timeout (REQUEST_TIMEOUT_MS), which is a 503 like a database that does not answer.
 */
function fastifyError(exception: unknown): { statusCode: number; message: string } | undefined {
  if (!(exception instanceof Error)) return undefined;
  const { statusCode, code } = exception as Error & { statusCode?: unknown; code?: unknown };
  if (code === 'FST_ERR_HANDLER_TIMEOUT') {
    return { statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'The request did not complete in time; try again shortly' };
  }
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) return undefined;
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined;
  return { statusCode, message: exception.message };
}
