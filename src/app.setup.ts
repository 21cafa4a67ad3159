import { RequestMethod } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { type Logger } from 'pino';
import qs from 'qs';
import { FILTER_LIMITS } from './common/filter/filter.limits.js';
import { PROTO_KEY_STANDIN } from './common/filter/filter.parser.js';
import {
  bodyTooDeep,
  frameworkErrorBody,
  jsonNestsDeeperThan,
  MAX_BODY_DEPTH,
  MAX_ROUTED_PARAM_LENGTH,
  unsupportedMediaType,
} from './common/http/request-guards.js';
import { createOpenApiDocument } from './common/openapi/openapi-document.js';
import { registerRateLimit } from './common/http/rate-limit.js';
import { securityHeaders } from './common/http/security-headers.js';
import { securityConfig } from './config/config.module.js';
import { type Configuration } from './config/configuration.js';
import { type TrustProxy } from './config/trust-proxy.js';
import { createLogger, RequestLogController, requestId } from './logging/logger.js';

type HttpConfiguration = Configuration['http'];

/** No brackets: plain `key=value` pairs (`?include=devices`, `?filter={...}`), the common case. */
function isFlat(query: string): boolean {
  return !query.includes('[') && !query.includes('%5B') && !query.includes('%5b');
}

/** As qs parses them: a repeated key becomes a list; the object has no prototype. */
function parseFlat(query: string): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = Object.create(null);
  for (const [rawKey, value] of new URLSearchParams(query)) {
    const key = rawKey === '__proto__' ? PROTO_KEY_STANDIN : rawKey;
    const previous = result[key];
    result[key] = previous === undefined ? value : [previous, value].flat();
  }
  return result;
}

/** A hop count as the function Fastify makes of it (its types take no number, its code does). */
function fastifyTrustProxy(trust: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}

/** `loggerInstance`: a logger made earlier with createLogger, for logs written before the application exists. */
export function createAdapter(
  http: HttpConfiguration,
  logging: Configuration['logging'],
  loggerInstance: Logger = createLogger(logging),
): FastifyAdapter {
  const headers = securityHeaders();
  const routeUrls: string[] = [];
  const adapter = new FastifyAdapter({
    loggerInstance,
    logController: new RequestLogController(),
    genReqId: requestId,
    // Behind a proxy or load balancer, the client's address (rate limit, logs) is the one the
    // trusted hops forwarded; without it every client behind the proxy shares one address.
    trustProxy: fastifyTrustProxy(http.trustProxy),
    bodyLimit: http.bodyLimitBytes,
    // A client that trickles its request in is cut off (408); a request not answered in time
    // gets 503 (Fastify's own timer, cheaper than an interceptor around every handler).
    requestTimeout: http.requestTimeoutMs,
    handlerTimeout: http.requestTimeoutMs,
    // HEAD is answered where DESIGN.md lists it, by routes of its own; automatic HEAD
    // siblings of every GET would collide with them.
    exposeHeadRoutes: false,
    routerOptions: {
      // LoopBack's bracket form (?filter[where][name]=a) needs a nesting query-string parser.
      // Past `depth` qs keeps the rest of the key as one literal key, which the filter parser
      // then refuses as unknown; arrays are kept as arrays up to the `inq` limit. Objects
      // without a prototype keep keys like __proto__ as plain data, so the filter parser
      // refuses them (400) as it does in JSON; `__proto__`, which qs would drop silently, comes
      // through as a stand-in the parser refuses too.
      querystringParser: (query) =>
        isFlat(query)
          ? parseFlat(query)
          : qs.parse(query, {
              depth: FILTER_LIMITS.maxDepth + 2,
              arrayLimit: FILTER_LIMITS.maxValues,
              parameterLimit: 4 * FILTER_LIMITS.maxValues,
              plainObjects: true,
              decoder: (text, decode, charset, kind) => {
                const decoded: string = decode(text, decode, charset);
                return kind === 'key' ? decoded.replaceAll('__proto__', PROTO_KEY_STANDIN) : decoded;
              },
            }),
      // A path id is at most 128 characters (a myId). Up to this length (compared decoded) an
      // over-long id still reaches its route, whose pipe names it in its own words (400); past
      // it the router refuses it, and frameworkErrors below answers 400 in the error shape.
      maxParamLength: MAX_ROUTED_PARAM_LENGTH,
    },
    // The router answers an over-long path parameter (414) or a malformed percent-encoding
    // itself, with a body that echoes the URL; these answer in the error shape instead.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const body = frameworkErrorBody(error, request.url, routeUrls);
      void reply.headers(headers).header('X-Request-Id', request.id).code(body.statusCode).send(body);
    },
  });
  const fastify = adapter.getInstance();
  fastify.addHook('onRoute', (route) => {
    routeUrls.push(route.url);
  });
  acceptOnlyJsonBodies(adapter, http.bodyLimitBytes);
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers);
    reply.header('X-Request-Id', request.id);
    done();
  });
  // Once the service is closing, responses to the requests still in flight close their
  // connections: a keep-alive connection busy when closing began would otherwise stay open
  // until its client's timeout and hold the shutdown up.
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('Connection', 'close');
    done(null, payload);
  });
  return adapter;
}

/**
 * The only body parser: application/json, refused past MAX_BODY_DEPTH levels before JSON.parse
 * runs (Fastify's own parser then refuses __proto__ and constructor.prototype keys). Any other
 * content type is a 415, so a cross-site HTML form (urlencoded, multipart, text/plain) cannot
 * write. Registered through the adapter, Nest then adds no parsers of its own (its default
 * would take urlencoded bodies).
 */
function acceptOnlyJsonBodies(adapter: FastifyAdapter, bodyLimit: number): void {
  const fastify = adapter.getInstance();
  fastify.removeAllContentTypeParsers();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  adapter.useBodyParser('application/json', false, { bodyLimit }, (request, body, done) => {
    if (jsonNestsDeeperThan(body, MAX_BODY_DEPTH)) done(bodyTooDeep(), undefined);
    else parseJson(request, body.toString('utf8'), done);
  });
  adapter.useBodyParser('*', false, { bodyLimit }, (request, _body, done) => {
    done(unsupportedMediaType(request.headers['content-type']), undefined);
  });
}

/** What main.ts and the e2e tests both apply to the application. */
export async function configureApp(app: NestFastifyApplication, http: HttpConfiguration): Promise<NestFastifyApplication> {
  app.setGlobalPrefix('api', {
    exclude: [
      { path: 'health', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  // Before any route is registered (Nest's in app.init(), Swagger's below), so that every one of
  // them is counted but those that opt out.
  await registerRateLimit(app, app.get<Configuration['security']>(securityConfig.KEY));
  if (http.corsOrigins) {
    app.enableCors({
      origin: http.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Content-Type', 'Authorization', 'X-API-Key', 'X-Request-Id', 'If-Match', 'If-None-Match'],
      exposedHeaders: [
        'ETag',
        'X-Total-Count',
        'X-Request-Id',
        'Retry-After',
        'X-RateLimit-Limit',
        'X-RateLimit-Remaining',
        'X-RateLimit-Reset',
      ],
    });
  }
  // Built on the first request for it, not at start-up: most instances never serve it, and the
  // document and the scan that builds it hold memory for nothing.
  const document = () =>
    createOpenApiDocument(app, {
      title: 'refmany',
      description:
        'Accounts that reference many Devices. Wherever a device id is taken, its ObjectId or its myId will do; references are stored ' +
        'as ObjectIds and removed from every account when the device is deleted.',
    });
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', swaggerOptions: { persistAuthorization: true } });
  return app;
}
