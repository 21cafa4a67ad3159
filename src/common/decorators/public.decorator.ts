import { applyDecorators, SetMetadata } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { DECORATORS } from '@nestjs/swagger';

export const IS_PUBLIC = 'refmany:public';

/** Keeps @fastify/rate-limit off a route (see common/http/rate-limit.ts). */
const NOT_RATE_LIMITED = RouteConfig({ rateLimit: false });

/**
 * Open without an API key and never rate limited: the health checks and the metrics. The
 * OpenAPI document says so with an empty `security`, which also keeps the guards' 401, 403 and
 * 429 off them (on a class: Swagger drops an empty `security` given to a method alone).
 */
export const Public = (): ClassDecorator & MethodDecorator =>
  ((target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    applyDecorators(SetMetadata(IS_PUBLIC, true), SetMetadata(DECORATORS.API_SECURITY, []))(target, key, descriptor);
    if (key !== undefined && descriptor) {
      NOT_RATE_LIMITED(target, key, descriptor);
      return;
    }
    // Fastify reads a route's config from its handler, never from the class: each handler gets it.
    const prototype = (target as { prototype: object }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const method = Object.getOwnPropertyDescriptor(prototype, name)!;
      if (name !== 'constructor' && typeof method.value === 'function') NOT_RATE_LIMITED(prototype, name, method);
    }
  }) as ClassDecorator & MethodDecorator;
