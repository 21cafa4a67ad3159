import { type INestApplication } from '@nestjs/common';
import { DocumentBuilder, type HeadersObject, type OpenAPIObject, type ResponseObject, SwaggerModule } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../database/project-root.js';
import { type ErrorCase, errorBody, errorCase } from './error-example.js';

type Operation = NonNullable<OpenAPIObject['paths'][string]['get']>;
type Responses = Operation['responses'];

const READS = new Set(['get', 'head', 'options']);
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

/**
 * The OpenAPI document of the application, as Swagger UI at /docs and /docs-json serve it.
 * Responses that global parts of the service give on any route — the API key guard's 401 and
 * 403, the rate limit's 429, the body limit's 413 and the body parser's 415 — are added here to
 * every route they apply to, from the same facts those parts act on: a public route (empty
 * `security`) has no key and no limit; only writes need the write role; only routes with a body
 * can get a 413 or a 415.
 */
export function createOpenApiDocument(app: INestApplication, about: { title: string; description: string }): OpenAPIObject {
  const { version, license } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as {
    version: string;
    license: string;
  };
  const config = new DocumentBuilder()
    .setTitle(about.title)
    .setDescription(
      `${about.description} Errors share one shape: \`{ statusCode, error, message, details?: [{ path, code, message }] }\`. ` +
        'When the service runs with API_KEYS, authorize with a key (as a Bearer token or in X-API-Key): a read key for GET and HEAD, ' +
        'a write key for everything.',
    )
    .setVersion(version)
    // Relative: requests go to the host that serves this document, wherever it runs.
    .addServer('/', 'This service')
    .addSecurity('bearer', { type: 'http', scheme: 'bearer', description: 'An API key from API_KEYS, as a Bearer token' })
    .addSecurity('api-key', { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key from API_KEYS' })
    .addSecurityRequirements('bearer')
    .addSecurityRequirements('api-key')
    .build();
  // `license.url` is optional, and there is none for a package that is not licensed for use
  // (`UNLICENSED` in package.json); DocumentBuilder would write an empty one.
  config.info.license = { name: license };
  const document = SwaggerModule.createDocument(app, config, {
    // Each route's operationId is its handler's name, which generated clients turn into their
    // method names: handlers are named for that, uniquely across controllers.
    operationIdFactory: (_controller, method) => method,
  });
  for (const path of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = path[method];
      if (operation) addGlobalResponses(method, operation);
    }
  }
  return document;
}

// The errors global parts of the service give on any route (see addGlobalResponses).
const MISSING_KEY = errorCase(401, 'missingKey', 'An API key is required: send Authorization: Bearer <key> or X-API-Key: <key>');
const INVALID_KEY = errorCase(401, 'invalidKey', 'The API key is not valid');
const READ_ONLY_KEY = errorCase(403, 'readOnlyKey', 'This API key may only read; writing needs a key with the write role');
const TOO_MANY = errorCase(429, 'tooManyRequests', 'Too many requests; retry after the number of seconds in Retry-After');
const TOO_LARGE = errorCase(413, 'bodyTooLarge', 'Request body is too large');
const NOT_JSON = errorCase(415, 'notJson', 'Only application/json bodies are accepted (got application/x-www-form-urlencoded)');

function addGlobalResponses(method: (typeof METHODS)[number], operation: Operation): void {
  const isPublic = operation.security !== undefined && operation.security.length === 0;
  const responses: Responses = { ...operation.responses };
  if (!isPublic) {
    responses[401] = errorResponse(
      'No API key, or one that is not valid (only when the service runs with API_KEYS)',
      [MISSING_KEY, INVALID_KEY],
      { 'WWW-Authenticate': { description: 'The scheme to authenticate with: `Bearer`', schema: { type: 'string' } } },
    );
    if (!READS.has(method)) {
      responses[403] = errorResponse('The API key may only read (only when the service runs with API_KEYS)', [READ_ONLY_KEY]);
    }
    responses[429] = errorResponse('Too many requests from this client in the window (RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_S)', [TOO_MANY], {
      'Retry-After': { description: 'Seconds until the client may send again', schema: { type: 'integer' } },
    });
  }
  if (operation.requestBody) {
    responses[413] = errorResponse('The body is larger than BODY_LIMIT_BYTES', [TOO_LARGE]);
    responses[415] = errorResponse('The body is not application/json', [NOT_JSON]);
  }
  // In status order, as Swagger UI lists them.
  operation.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
}

function errorResponse(description: string, cases: ErrorCase[], headers?: HeadersObject): ResponseObject {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: {
      'application/json': {
        schema: { $ref: '#/components/schemas/ErrorResponse' },
        examples: Object.fromEntries(cases.map((error) => [error.name, { summary: error.message, value: errorBody(error) }])),
      },
    },
  };
}
