import {
  applyDecorators,
  type CallHandler,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { ApiHeader, ApiResponse, DECORATORS } from '@nestjs/swagger';
import { type FastifyReply, type FastifyRequest } from 'fastify';
import { map, type Observable } from 'rxjs';
import { ApiErrors } from '../decorators/api-errors.decorator.js';
import { DocumentedParameter } from '../decorators/path-param.decorator.js';
import { preconditionFailed } from '../errors.js';
import {
  entityTagOf,
  type EntityTagCondition,
  isNotModified,
  isVersioned,
  malformedEntityTags,
  parseEntityTags,
} from '../http/entity-tags.js';
import { type ErrorCase } from '../openapi/error-example.js';
import { REVISION } from '../schema/revision.plugin.js';

const EXAMPLE_TAG = '"6650c0ffee0000000000a001-3"';

/**
 * Gives an answer that is one whole document (its revision read with it) the document's ETag,
 * and answers a GET whose If-None-Match names that tag 304 without a body. An answer without a
 * revision (a read that picked `fields`, or included other documents, which the document's
 * version does not cover) gets neither, so a cache never takes one representation for another.
 */
@Injectable()
class EntityTagInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const ifNoneMatch = request.method === 'GET' ? parseEntityTags(request.headers['if-none-match'], 'If-None-Match') : undefined;
    return next.handle().pipe(
      map((body: unknown) => {
        if (!isVersioned(body)) return body;
        const tag = entityTagOf(body);
        const { [REVISION]: _revision, ...answer } = body;
        void reply.header('ETag', tag);
        if (!isNotModified(ifNoneMatch, tag)) return answer;
        void reply.code(304);
        return undefined;
      }),
    );
  }
}

/**
 * Named examples of a conditional header, the first empty: Swagger UI's "Try it out" fills a
 * parameter in with its (first) example, and a sample ETag sent by default would make every
 * try a 412 or a 304.
 */
function unlessChosen(absent: string, present: string) {
  return { none: { summary: absent, value: '' }, tag: { summary: present, value: EXAMPLE_TAG } };
}

const ETAG_HEADER = {
  ETag: {
    description:
      "The document's version, a strong entity tag that changes with every write; send it in If-Match to write only that version",
    schema: { type: 'string', example: EXAMPLE_TAG },
  },
};

/** Adds the ETag header to the documented `status` response, keeping what else documents it (as Responds does). */
function documentETag(status: number): MethodDecorator {
  return (_target, _key, descriptor) => {
    const responses = (Reflect.getMetadata(DECORATORS.API_RESPONSE, descriptor.value as object) ?? {}) as Record<
      string,
      { headers?: object }
    >;
    const response = responses[status] ?? {};
    Reflect.defineMetadata(
      DECORATORS.API_RESPONSE,
      { ...responses, [status]: { ...response, headers: { ...response.headers, ...ETAG_HEADER } } },
      descriptor.value as object,
    );
    return descriptor;
  };
}

/** A write that answers the document it wrote (or created): the answer carries its new ETag. */
export function AnswersETag(status: 200 | 201): MethodDecorator {
  return applyDecorators(UseInterceptors(EntityTagInterceptor), documentETag(status));
}

/** A GET of one document: its ETag, and 304 when If-None-Match names it. */
export function ConditionalRead(): MethodDecorator {
  return applyDecorators(
    UseInterceptors(EntityTagInterceptor),
    documentETag(200),
    ApiHeader({
      name: 'If-None-Match',
      required: false,
      description: 'ETags of versions the client holds (or `*`): if the document is still at one of them, the answer is 304 without a body',
      schema: { type: 'string' },
      examples: unlessChosen('Not sent: always the document', 'Only if it changed since this version'),
    }),
    ApiResponse({
      status: 304,
      description: 'Not modified: the document is at a version If-None-Match names (no body)',
      headers: ETAG_HEADER,
    }),
    ApiErrors({ status: 400, name: 'malformedIfNoneMatch', ...malformedEntityTags('If-None-Match') }),
  );
}

const IfMatchHeader = createParamDecorator((_data: unknown, context: ExecutionContext): EntityTagCondition | undefined =>
  parseEntityTags(context.switchToHttp().getRequest<FastifyRequest>().headers['if-match'], 'If-Match'),
);

/**
 * The request's If-Match (`*` or entity tags), parsed (400 when malformed) and documented with
 * the 412 the write answers when the document is at another version. `resource` names the
 * document in the example, as the service names it.
 */
export function IfMatch(resource: string): ParameterDecorator {
  const precondition = preconditionFailed(resource).getResponse() as Omit<ErrorCase, 'status' | 'name'>;
  return DocumentedParameter(
    IfMatchHeader(),
    ApiHeader({
      name: 'If-Match',
      required: false,
      description:
        'Write only if the document is still at this version: its ETag (several, comma-separated, or `*` for any). ' +
        'Otherwise 412 and nothing is written.',
      schema: { type: 'string' },
      examples: unlessChosen('Not sent: write whatever the version', 'Only if still at this version'),
    }),
    ApiErrors(
      { status: 400, name: 'malformedIfMatch', ...malformedEntityTags('If-Match') },
      { status: 412, name: 'changed', message: precondition.message, details: precondition.details },
    ),
  );
}
