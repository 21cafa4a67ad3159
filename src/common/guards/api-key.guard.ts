import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { securityConfig } from '../../config/config.module.js';
import { type ApiRole } from '../../config/configuration.js';
import { IS_PUBLIC } from '../decorators/public.decorator.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const digest = (key: string) => createHash('sha256').update(key).digest();

/**
 * With API_KEYS set, every route but the public ones needs `Authorization: Bearer <key>` or
 * `X-API-Key: <key>`: 401 without a valid key, 403 for a write with a read key. Keys are
 * compared as SHA-256 digests in constant time against every configured key, so neither the
 * length nor the position of a match shows in the timing. Keys never reach a log line.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys?: ReadonlyArray<{ digest: Buffer; role: ApiRole }>;

  constructor(
    private readonly reflector: Reflector,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
  ) {
    this.keys = security.apiKeys && [...security.apiKeys].map(([key, role]) => ({ digest: digest(key), role }));
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.keys) return true;
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    return this.verify(context);
  }

  /** The key check alone, public or not: for routes whose openness is configured (/metrics). */
  verify(context: ExecutionContext): boolean {
    if (!this.keys) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const presented = presentedKey(request);
    if (!presented) {
      http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedException({ message: 'An API key is required: send Authorization: Bearer <key> or X-API-Key: <key>' });
    }
    const role = this.roleOf(presented);
    if (!role) {
      http.getResponse<FastifyReply>().header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new UnauthorizedException({ message: 'The API key is not valid' });
    }
    if (role === 'read' && !READ_METHODS.has(request.method)) {
      throw new ForbiddenException({ message: 'This API key may only read; writing needs a key with the write role' });
    }
    return true;
  }

  private roleOf(presented: string): ApiRole | undefined {
    const candidate = digest(presented);
    let match: ApiRole | undefined;
    for (const key of this.keys!) {
      if (timingSafeEqual(candidate, key.digest)) match = key.role;
    }
    return match;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' && header.length > 0 ? header : undefined;
}
