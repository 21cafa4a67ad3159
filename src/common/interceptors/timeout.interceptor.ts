import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  ServiceUnavailableException,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { type Observable, TimeoutError, catchError, throwError, timeout } from 'rxjs';
import { httpConfig } from '../../config/config.module.js';

/**
 * A handler that has not answered within REQUEST_TIMEOUT_MS is answered 503, so no client
 * waits without bound whatever the database or the machine is doing.
 */
@Injectable()
export class TimeoutInterceptor implements NestInterceptor {
  constructor(@Inject(httpConfig.KEY) private readonly http: ConfigType<typeof httpConfig>) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      timeout(this.http.requestTimeoutMs),
      catchError((error: unknown) =>
        throwError(() =>
          error instanceof TimeoutError
            ? new ServiceUnavailableException({
                message: `The request did not complete within ${this.http.requestTimeoutMs} ms; try again shortly`,
              })
            : error,
        ),
      ),
    );
  }
}
