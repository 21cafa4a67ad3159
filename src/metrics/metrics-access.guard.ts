import { type CanActivate, type ExecutionContext, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { type FastifyRequest } from 'fastify';
import { ApiKeyGuard } from '../common/guards/api-key.guard.js';
import { metricsConfig } from '../config/config.module.js';

/**
 * METRICS decides who may read /metrics: nobody (`off`, a 404 as for any unknown route),
 * anyone (`public`), or a holder of any API key, read or write (`key`). The route is `@Public()`
 * so that the API's own key check stays out of the way of `public`.
 */
@Injectable()
export class MetricsAccessGuard implements CanActivate {
  constructor(
    @Inject(metricsConfig.KEY) private readonly metrics: ConfigType<typeof metricsConfig>,
    private readonly apiKeys: ApiKeyGuard,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.metrics.mode === 'off') {
      const request = context.switchToHttp().getRequest<FastifyRequest>();
      throw new NotFoundException({ message: `Cannot ${request.method} ${request.url}` });
    }
    return this.metrics.mode === 'public' || this.apiKeys.verify(context);
  }
}
