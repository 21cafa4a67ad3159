import { applyDecorators, SetMetadata } from '@nestjs/common';
import { DECORATORS } from '@nestjs/swagger';
import { RouteConfig } from '@nestjs/platform-fastify';

export const IS_PUBLIC = 'refmany:public';

/**
 * Open without an API key and never rate limited: the health checks and the metrics. The
 * OpenAPI document says so with an empty `security`, which also keeps the guards' 401, 403 and
 * 429 off them. A method decorator only, because Fastify reads a route's config (here
 * `rateLimit: false`, which keeps @fastify/rate-limit off the route) from the handler, never
 * from its class.
 */
export const Public = (): MethodDecorator =>
  applyDecorators(SetMetadata(IS_PUBLIC, true), SetMetadata(DECORATORS.API_SECURITY, []), RouteConfig({ rateLimit: false }));
