import { type CanActivate, type ExecutionContext, HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { type FastifyReply, type FastifyRequest } from 'fastify';
import { securityConfig } from '../../config/config.module.js';
import { IS_PUBLIC } from '../decorators/public.decorator.js';

interface Window {
  count: number;
  resetAt: number;
}

/** Past this many tracked clients, expired windows are swept before a new one is added. */
const SWEEP_AT = 10_000;

/**
 * RATE_LIMIT_MAX requests per client (by address) per RATE_LIMIT_WINDOW_S, in fixed windows
 * kept in memory; past it, 429 with Retry-After in seconds. 0 turns it off. Health checks are
 * not limited.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly windows = new Map<string, Window>();
  private readonly max: number;
  private readonly windowMs: number;

  constructor(
    private readonly reflector: Reflector,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
  ) {
    this.max = security.rateLimitMax;
    this.windowMs = security.rateLimitWindowS * 1000;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.max === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const http = context.switchToHttp();
    const client = http.getRequest<FastifyRequest>().ip;
    const now = Date.now();
    let window = this.windows.get(client);
    if (!window || window.resetAt <= now) {
      if (!window && this.windows.size >= SWEEP_AT) this.sweep(now);
      window = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(client, window);
    }
    window.count += 1;
    if (window.count <= this.max) return true;
    const retryAfter = Math.max(1, Math.ceil((window.resetAt - now) / 1000));
    http.getResponse<FastifyReply>().header('Retry-After', String(retryAfter));
    throw new HttpException(
      { message: `Too many requests: at most ${this.max} per ${this.windowMs / 1000} s; retry in ${retryAfter} s` },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }

  private sweep(now: number): void {
    for (const [client, window] of this.windows) if (window.resetAt <= now) this.windows.delete(client);
  }
}
