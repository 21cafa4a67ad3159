import { type CallHandler, type ExecutionContext, type NestInterceptor, UseInterceptors } from '@nestjs/common';
import { catchError, type Observable, throwError } from 'rxjs';
import { RelationRuleError } from './relation-rule.error.js';

class RelationFieldInterceptor implements NestInterceptor {
  constructor(private readonly field: string) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next
      .handle()
      .pipe(catchError((error: unknown) => throwError(() => (error instanceof RelationRuleError ? error.at(this.field) : error))));
  }
}

/** Names the request field whose keys a relation rule error is about (`ids`, `deviceIds`, `fk`). */
export function RelationField(field: string): MethodDecorator {
  return UseInterceptors(new RelationFieldInterceptor(field));
}
