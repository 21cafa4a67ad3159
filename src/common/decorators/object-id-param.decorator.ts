import { malformedObjectId, OBJECT_ID_PATTERN, ParseObjectIdPipe } from '../pipes/parse-object-id.pipe.js';
import { PathParam } from './path-param.decorator.js';

/** A path parameter holding an ObjectId, parsed to one (400 when malformed) and documented. */
export function ObjectIdParam(name: string, description: string, example: string): ParameterDecorator {
  return PathParam(name, ParseObjectIdPipe, {
    description,
    schema: { type: 'string', pattern: OBJECT_ID_PATTERN, minLength: 24, maxLength: 24, example },
    malformed: malformedObjectId(name),
  });
}
