import { applyDecorators } from '@nestjs/common';
import { AnswersETag } from '../interceptors/entity-tag.interceptor.js';
import { SerializeAs } from '../serialization/response-schema.js';
import { Responds } from './responds.decorator.js';

/** A route's success answer: written by the serializer its JSON schema compiles to, and documented in these words. */
export function Answers(status: 200 | 201, schema: object, description: string): MethodDecorator {
  return applyDecorators(SerializeAs(status, schema), Responds(status, description));
}

/** A route that answers the one document it read or wrote, with that document's ETag. */
export function AnswersDocument(status: 200 | 201, schema: object, description: string): MethodDecorator {
  return applyDecorators(Answers(status, schema, description), AnswersETag(status));
}
