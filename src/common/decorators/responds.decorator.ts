import { DECORATORS } from '@nestjs/swagger';

/**
 * Describes a route's success response. The Swagger plugin documents its status and type from
 * the handler's signature but leaves the description empty; this only adds the words, keeping
 * what the plugin infers, whichever of the two is applied first.
 */
export function Responds(status: 200 | 201 | 204, description: string): MethodDecorator {
  return (_target, _key, descriptor) => {
    const responses = (Reflect.getMetadata(DECORATORS.API_RESPONSE, descriptor.value as object) ?? {}) as Record<string, object>;
    Reflect.defineMetadata(
      DECORATORS.API_RESPONSE,
      { ...responses, [status]: { ...responses[status], description } },
      descriptor.value as object,
    );
    return descriptor;
  };
}
