import { type LoggerService } from '@nestjs/common';
import { type Logger } from 'pino';

/**
 * Nest's bookkeeping at start-up: a line per module and per route (about fifty). At `debug`, so
 * that the `info` start-up log is the steps a person waits on (database, listening).
 */
const BOOKKEEPING = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer']);

/** Nest's own log lines (start-up, lifecycle, errors) through the same pino logger as requests. */
export class PinoNestLogger implements LoggerService {
  /** Error lines held back while the application starts; undefined once it has started. */
  private heldErrors?: Array<() => void>;

  constructor(private readonly logger: Logger) {}

  /**
   * Until `started()`, error lines are held back: a start-up that fails is reported by main.ts
   * in one line saying what to do, and Nest's own account of the same failure (a stack trace
   * from its exception handler, the Mongoose module's "Unable to connect") would bury it.
   */
  holdErrorsUntilStarted(): void {
    this.heldErrors = [];
  }

  /** Writes the error lines held back during a start-up that succeeded after all. */
  started(): void {
    const held = this.heldErrors ?? [];
    this.heldErrors = undefined;
    for (const write of held) write();
  }

  log(message: unknown, context?: string): void {
    this.write(context && BOOKKEEPING.has(context) ? 'debug' : 'info', message, context);
  }

  error(message: unknown, stackOrContext?: string, context?: string): void {
    const stack = context ? stackOrContext : undefined;
    const write = () => this.write('error', message, context ?? stackOrContext, stack);
    if (this.heldErrors) this.heldErrors.push(write);
    else write();
  }

  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }

  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }

  verbose(message: unknown, context?: string): void {
    this.write('trace', message, context);
  }

  fatal(message: unknown, context?: string): void {
    this.write('fatal', message, context);
  }

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal', message: unknown, context?: string, stack?: string): void {
    if (message instanceof Error) this.logger[level]({ context, err: message }, message.message);
    else if (typeof message === 'object' && message !== null) this.logger[level]({ context, ...message });
    else this.logger[level]({ context, ...(stack ? { stack } : {}) }, String(message));
  }
}
