import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { type IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { type Configuration } from '../config/configuration.js';

/** A client's X-Request-Id is kept if it is a plain token; anything else is replaced. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestId(request: IncomingMessage): string {
  const offered = request.headers['x-request-id'];
  return typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID();
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * Structured JSON logs (pino), or pretty single lines for a person at a terminal. Credentials
 * are redacted wherever a request's headers would be logged.
 */
export function createLogger(logging: Configuration['logging']): Logger {
  const pretty = logging.format === 'pretty' && prettyAvailable();
  return pino(
    {
      level: logging.level,
      base: { service: 'refmany' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'],
      transport: pretty ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
    },
    pretty ? undefined : bufferedStdout(),
  );
}

/**
 * Log lines go out in batches of a few kilobytes rather than one write each, and at least
 * every 100 ms when it is quiet; pino writes what is left when the process exits.
 */
function bufferedStdout() {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), 100).unref();
  return destination;
}

/**
 * One line per request, written when it completes: method, route, status, duration and the
 * request id (bound to every line of the request as `requestId`). Errors are `error`, client
 * mistakes `warn`, the rest `info`.
 */
export class RequestLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'requestId' });
  }

  override incomingRequest(): void {
    // Logged once, on completion.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: request.url,
      status,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
    };
    const message = `${request.method} ${line.route ?? request.url} ${status}`;
    if (error || status >= 500) reply.log.error({ ...line, err: error ?? undefined }, message);
    else if (status >= 400) reply.log.warn(line, message);
    else reply.log.info(line, message);
  }
}
