import {
  applyDecorators,
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  type Type,
  UseInterceptors,
} from '@nestjs/common';
import { ApiOkResponse } from '@nestjs/swagger';
import { type FastifyReply } from 'fastify';
import { map, type Observable } from 'rxjs';
import { type Page } from '../filter/page.js';

/** Answers a handler's `Page` with its items as the body and its total in `X-Total-Count`. */
@Injectable()
export class TotalCountInterceptor<T> implements NestInterceptor<Page<T>, T[]> {
  intercept(context: ExecutionContext, next: CallHandler<Page<T>>): Observable<T[]> {
    return next.handle().pipe(
      map(({ items, total }) => {
        context.switchToHttp().getResponse<FastifyReply>().header('X-Total-Count', total);
        return items;
      }),
    );
  }
}

/**
 * A list route whose handler returns a `Page`: the body is the page's items, `X-Total-Count`
 * every match (ignoring limit and skip), and both are documented. Named like Swagger's own
 * response decorators, so that the CLI plugin leaves the 200 to it rather than inferring one
 * from the `Page` the handler returns.
 */
export function ApiPageResponse(item: Type<unknown>, description: string, totalDescription: string): MethodDecorator {
  return applyDecorators(
    UseInterceptors(TotalCountInterceptor),
    ApiOkResponse({
      type: [item],
      description,
      headers: { 'X-Total-Count': { description: totalDescription, schema: { type: 'integer', minimum: 0 } } },
    }),
  );
}
