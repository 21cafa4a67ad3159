import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { STATUS_CODES } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';

interface Example {
  summary?: string;
  value: unknown;
}

interface Schema {
  type?: string;
  pattern?: string;
  example?: unknown;
  $ref?: string;
  allOf?: unknown[];
  oneOf?: unknown[];
  anyOf?: unknown[];
  properties?: Record<string, unknown>;
  items?: Schema;
}

interface Parameter {
  name: string;
  in: string;
  description?: string;
  schema?: Schema;
  content?: Record<string, { schema?: Schema }>;
  examples?: Record<string, Example>;
}

interface Response {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema?: Schema; example?: unknown; examples?: Record<string, Example> }>;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: unknown;
  security?: Array<Record<string, string[]>>;
  responses: Record<string, Response>;
}

interface OpenApiDocument {
  openapi: string;
  info: { license?: { name: string } };
  servers?: Array<{ url: string }>;
  security?: Array<Record<string, string[]>>;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { properties?: Record<string, Record<string, unknown>>; required?: string[] }>;
    securitySchemes: Record<string, Record<string, unknown>>;
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);
const ERROR_RESPONSE = '#/components/schemas/ErrorResponse';

/** Every route DESIGN.md names, as OpenAPI path templates. */
const ROUTES: Array<[string, string]> = [
  ['post', '/api/devices'],
  ['get', '/api/devices'],
  ['get', '/api/devices/count'],
  ['post', '/api/devices/update'],
  ['get', '/api/devices/findOne'],
  ['get', '/api/devices/{id}'],
  ['patch', '/api/devices/{id}'],
  ['put', '/api/devices/{id}'],
  ['delete', '/api/devices/{id}'],
  ['head', '/api/devices/{id}'],
  ['get', '/api/devices/{id}/exists'],
  ['get', '/api/devices/{id}/accounts'],
  ['post', '/api/accounts'],
  ['get', '/api/accounts'],
  ['get', '/api/accounts/count'],
  ['post', '/api/accounts/update'],
  ['get', '/api/accounts/findOne'],
  ['get', '/api/accounts/{id}'],
  ['patch', '/api/accounts/{id}'],
  ['put', '/api/accounts/{id}'],
  ['delete', '/api/accounts/{id}'],
  ['head', '/api/accounts/{id}'],
  ['get', '/api/accounts/{id}/exists'],
  ['get', '/api/accounts/{id}/devices'],
  ['get', '/api/accounts/{id}/devices/count'],
  ['post', '/api/accounts/{id}/devices'],
  ['delete', '/api/accounts/{id}/devices'],
  ['get', '/api/accounts/{id}/devices/{fk}'],
  ['put', '/api/accounts/{id}/devices/{fk}'],
  ['delete', '/api/accounts/{id}/devices/{fk}'],
  ['put', '/api/accounts/{id}/devices/rel/{fk}'],
  ['delete', '/api/accounts/{id}/devices/rel/{fk}'],
  ['head', '/api/accounts/{id}/devices/rel/{fk}'],
  ['post', '/api/accounts/{id}/devices/rel'],
  ['put', '/api/accounts/{id}/devices/rel'],
];

describe('API documentation', () => {
  let t: TestApp;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    t = await createTestApp();
    doc = (await request(t.http).get('/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([method]) => HTTP_METHODS.has(method))
        .map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, method, path, operation })),
    );
  const apiOperations = () => operations().filter(({ path }) => path.startsWith('/api/'));
  const errorResponses = () =>
    operations().flatMap(({ route, operation }) =>
      Object.entries(operation.responses)
        .filter(([status]) => /^[45]\d\d$/.test(status))
        .map(([status, response]) => ({ route, status: Number(status), response })),
    );
  /** The examples of an error response, by name (a lone `example` counts as one). */
  const examplesOf = (response: Response): Record<string, unknown> => {
    const media = response.content?.['application/json'];
    if (!media) return {};
    const named = Object.fromEntries(Object.entries(media.examples ?? {}).map(([name, example]) => [name, example.value]));
    return media.example === undefined ? named : { ...named, example: media.example };
  };

  describe('GET /docs', () => {
    it('serves the Swagger UI as HTML', async () => {
      const res = await request(t.http).get('/docs').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toMatch(/swagger/i);
    });
  });

  describe('GET /docs-json', () => {
    it('serves an OpenAPI 3 document as JSON', async () => {
      const res = await request(t.http).get('/docs-json').expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.openapi).toMatch(/^3\./);
      expect(Object.keys(res.body.paths).length).toBeGreaterThan(0);
    });

    it.each(ROUTES)('documents %s %s', (method, path) => {
      expect(Object.keys(doc.paths[path] ?? {})).toContain(method);
    });

    it('documents at least one 4xx response with the ErrorResponse schema on every /api operation', () => {
      const all = apiOperations();
      expect(all.length).toBeGreaterThanOrEqual(ROUTES.length);
      const undocumented = all
        .filter(
          ({ operation }) =>
            !Object.entries(operation.responses).some(
              ([status, response]) => /^4\d\d$/.test(status) && response.content?.['application/json']?.schema?.$ref === ERROR_RESPONSE,
            ),
        )
        .map(({ route }) => route);
      expect(undocumented).toEqual([]);
    });

    it('documents every error response, 4xx and 5xx, with the ErrorResponse schema', () => {
      const wrong = operations().flatMap(({ route, operation }) =>
        Object.entries(operation.responses)
          .filter(
            ([status, response]) => /^[45]\d\d$/.test(status) && response.content?.['application/json']?.schema?.$ref !== ERROR_RESPONSE,
          )
          .map(([status]) => `${route} ${status}`),
      );
      expect(wrong).toEqual([]);
    });

    it('describes the error shape: statusCode, error, message and details of { path, code, message }', () => {
      const { ErrorResponse, ErrorDetail } = doc.components.schemas;
      expect(Object.keys(ErrorResponse.properties ?? {}).sort()).toEqual(['details', 'error', 'message', 'statusCode']);
      expect([...(ErrorResponse.required ?? [])].sort()).toEqual(['error', 'message', 'statusCode']);
      expect(ErrorResponse.properties?.details).toMatchObject({ type: 'array', items: { $ref: '#/components/schemas/ErrorDetail' } });
      expect(Object.keys(ErrorDetail.properties ?? {}).sort()).toEqual(['code', 'message', 'path']);
    });

    it('describes CreateDeviceDto with myId and deviceUID, both required', () => {
      const schema = doc.components.schemas.CreateDeviceDto;
      expect(schema.properties).toMatchObject({ myId: { type: 'string' }, deviceUID: { type: 'string' } });
      expect(schema.required).toEqual(expect.arrayContaining(['myId', 'deviceUID']));
    });

    it('describes CreateAccountDto with a required name and optional deviceIds of strings', () => {
      const schema = doc.components.schemas.CreateAccountDto;
      expect(schema.properties).toMatchObject({
        name: { type: 'string', minLength: 1, maxLength: 200 },
        deviceIds: { type: 'array', items: { type: 'string' } },
      });
      expect(schema.required).toContain('name');
      expect(schema.required ?? []).not.toContain('deviceIds');
    });
  });
  describe('what a client and Swagger UI need to call every route', () => {
    const PRIMITIVE = new Set(['string', 'integer', 'number', 'boolean']);

    /** Why `param` cannot be typed in by a person or passed as a plain value by a client, if it cannot. */
    function objectTyped(param: Parameter): string | undefined {
      if (param.content) {
        // A JSON text in a query string is fine when it is said to be one.
        return param.in === 'query' && param.content['application/json'] && /JSON/.test(param.description ?? '')
          ? undefined
          : 'has content instead of a schema';
      }
      const schema = param.schema ?? {};
      if (schema.$ref || schema.allOf || schema.oneOf || schema.anyOf) return `is typed by reference ${JSON.stringify(schema)}`;
      if (schema.type === 'array' && schema.items && PRIMITIVE.has(schema.items.type ?? '')) return undefined;
      if (!PRIMITIVE.has(schema.type ?? '')) return `is typed ${JSON.stringify(schema)}`;
      return undefined;
    }

    it('types no path or query parameter as an object (the account id was a $ref to Function, device ids had {})', () => {
      const wrong = apiOperations().flatMap(({ route, operation }) =>
        (operation.parameters ?? [])
          .filter((param) => param.in === 'path' || param.in === 'query')
          .flatMap((param) => {
            const problem = objectTyped(param);
            return problem ? [`${route} ${param.in} ${param.name} ${problem}`] : [];
          }),
      );
      expect(wrong).toEqual([]);
      expect(Object.keys(doc.components.schemas)).not.toContain('Function');
    });

    it('gives every path parameter a string schema with a pattern and an example that matches it', () => {
      const wrong = apiOperations().flatMap(({ route, operation }) =>
        (operation.parameters ?? [])
          .filter((param) => param.in === 'path')
          .flatMap((param) => {
            const { type, pattern, example } = param.schema ?? {};
            const examples = [...(example === undefined ? [] : [example]), ...Object.values(param.examples ?? {}).map((e) => e.value)];
            if (type !== 'string' || !pattern || examples.length === 0) return [`${route} ${param.name}: ${JSON.stringify(param)}`];
            return examples.filter((value) => !new RegExp(pattern).test(String(value))).map((value) => `${route} ${param.name}: ${value}`);
          }),
      );
      expect(wrong).toEqual([]);
    });

    it('documents account ids as ObjectIds and device ids by the myId rules', () => {
      const param = (path: string, method: string, name: string) =>
        doc.paths[path][method].parameters!.find((p) => p.name === name)!.schema!.pattern!;
      const accountId = new RegExp(param('/api/accounts/{id}/devices/rel/{fk}', 'put', 'id'));
      const deviceKey = new RegExp(param('/api/accounts/{id}/devices/rel/{fk}', 'put', 'fk'));
      expect(accountId.test('6650c0ffee0000000000a001')).toBe(true);
      expect(accountId.test('thermostat-kitchen')).toBe(false);
      for (const key of ['thermostat-kitchen', 'a', 'x.y:z_1-2', '6650c0ffee0000000000d001', 'a'.repeat(128)]) {
        expect(deviceKey.test(key)).toBe(true);
      }
      for (const key of ['', 'count', 'findOne', 'exists', 'rel', 'has space', 'a/b', 'a'.repeat(129)]) {
        expect(deviceKey.test(key)).toBe(false);
      }
      expect(param('/api/devices/{id}', 'get', 'id')).toBe(deviceKey.source);
    });

    it('gives the filter and where parameters named examples, as JSON strings', () => {
      const wrong = apiOperations().flatMap(({ route, operation }) =>
        (operation.parameters ?? [])
          .filter((param) => param.name === 'filter' || param.name === 'where')
          .flatMap((param) => {
            const values = Object.values(param.examples ?? {}).map((example) => example.value);
            if (param.schema?.type !== 'string' || values.length < 2) return [`${route} ${param.name} has no named examples`];
            return values.filter((value) => typeof value !== 'string' || (value !== '' && !isJson(value))).map((v) => `${route} ${v}`);
          }),
      );
      expect(wrong).toEqual([]);
    });

    it("gives each error response examples of its own, each with that response's statusCode (every one was a 404)", () => {
      const wrong = errorResponses().flatMap(({ route, status, response }) => {
        const examples = Object.entries(examplesOf(response));
        if (examples.length === 0) return [`${route} ${status} has no example`];
        return examples
          .filter(([, body]) => (body as { statusCode?: unknown }).statusCode !== status)
          .map(([name, body]) => `${route} ${status} example ${name} says ${JSON.stringify(body)}`);
      });
      expect(wrong).toEqual([]);
    });

    it('shapes every error example as the service does: statusCode, error, message and details naming a path', () => {
      const wrong = errorResponses().flatMap(({ route, status, response }) =>
        Object.entries(examplesOf(response))
          .filter(([, body]) => {
            const { error, message, details, ...rest } = body as Record<string, unknown>;
            delete rest.statusCode;
            const detailsOk =
              details === undefined ||
              (Array.isArray(details) && details.every((d) => typeof d.path === 'string' && typeof d.code === 'string'));
            return error !== STATUS_CODES[status] || typeof message !== 'string' || !detailsOk || Object.keys(rest).length > 0;
          })
          .map(([name]) => `${route} ${status} ${name}`),
      );
      expect(wrong).toEqual([]);
    });

    it('describes every response, successes included (35 had an empty description)', () => {
      const empty = operations().flatMap(({ route, operation }) =>
        Object.entries(operation.responses)
          .filter(([, response]) => !response.description?.trim())
          .map(([status]) => `${route} ${status}`),
      );
      expect(empty).toEqual([]);
    });

    it('marks the health checks public (security: []) and every /api route protected, with 401 and 429', () => {
      for (const path of ['/health', '/health/ready']) {
        expect(doc.paths[path].get.security).toEqual([]);
        expect(Object.keys(doc.paths[path].get.responses)).not.toEqual(expect.arrayContaining(['401']));
        expect(Object.keys(doc.paths[path].get.responses)).not.toContain('429');
      }
      expect(doc.security).toEqual([{ bearer: [] }, { 'api-key': [] }]);
      const wrong = apiOperations()
        .filter(({ operation }) => operation.security !== undefined || !operation.responses[401] || !operation.responses[429])
        .map(({ route }) => route);
      expect(wrong).toEqual([]);
    });

    it('documents 403 on every write and no read, 413 on every route with a body', () => {
      const wrong = apiOperations().flatMap(({ route, method, operation }) => {
        const write = !['get', 'head'].includes(method);
        const problems: string[] = [];
        if (write !== Boolean(operation.responses[403])) problems.push(`${route} 403`);
        if (Boolean(operation.requestBody) !== Boolean(operation.responses[413])) problems.push(`${route} 413`);
        return problems;
      });
      expect(wrong).toEqual([]);
      const bodies = apiOperations().filter(({ operation }) => operation.requestBody).length;
      expect(bodies).toBe(12);
    });

    it('describes the API key schemes without claiming a JWT', () => {
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.components.securitySchemes.bearer).not.toHaveProperty('bearerFormat');
      expect(doc.components.securitySchemes['api-key']).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
    });

    it('names a server and a license', () => {
      expect(doc.servers?.length).toBeGreaterThan(0);
      expect(doc.info.license?.name).toBeTruthy();
    });

    it('gives operationIds that read as method names, once each (not AccountDevicesController_link)', () => {
      const ids = operations().map(({ operation }) => operation.operationId);
      expect(ids.filter((id) => !/^[a-z][a-zA-Z]+$/.test(id) || /Controller/.test(id))).toEqual([]);
      expect(new Set(ids).size).toBe(ids.length);
      expect(doc.paths['/api/accounts/{id}/devices/rel/{fk}'].put.operationId).toBe('linkDevice');
      expect(doc.paths['/api/accounts'].get.operationId).toBe('findAccounts');
    });
  });

  describe('the examples are what the service answers', () => {
    /** A body each write accepts, so that the answer is about the ids in the path. */
    const BODIES: Record<string, object> = {
      'PUT /api/accounts/{id}': { name: 'Kitchen' },
      'PATCH /api/accounts/{id}': {},
      'POST /api/accounts/{id}/devices': { myId: 'sensor-door', deviceUID: 'UID-0099-C7' },
      'POST /api/accounts/{id}/devices/rel': { ids: [] },
      'PUT /api/accounts/{id}/devices/rel': { ids: [] },
      'PUT /api/accounts/{id}/devices/{fk}': {},
      'PATCH /api/devices/{id}': {},
      'PUT /api/devices/{id}': { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' },
    };

    it.each([
      ['an unknown account', '/api/accounts/{id}'],
      ['an unknown device', '/api/devices/{id}'],
    ])('answers %s with one of the documented 404s, on every route that names one', async (_case, prefix) => {
      await t.clear();
      const mismatches: string[] = [];
      // `exists` answers whether, never 404.
      const routes = apiOperations().filter(({ path }) => path.startsWith(prefix) && !path.endsWith('/exists'));
      for (const { route, method, path, operation } of routes) {
        // The examples' own ids, which name nothing in an empty database.
        const values = Object.fromEntries(
          (operation.parameters ?? [])
            .filter((p) => p.in === 'path')
            .map((p) => [p.name, String(p.schema?.example ?? Object.values(p.examples ?? {})[0]?.value)]),
        );
        const url = path.replace(/\{(\w+)\}/g, (_match, name: string) => encodeURIComponent(values[name]));
        const call = request(t.http)[method as 'get'](url);
        const res = await (operation.requestBody ? call.send(BODIES[route]) : call);
        const documented = Object.values(examplesOf(operation.responses['404'] ?? {}));
        if (res.status !== 404) mismatches.push(`${route}: ${res.status} ${res.text}`);
        else if (method !== 'head' && !documented.some((body) => isDeepStrictEqual(res.body, body))) {
          mismatches.push(`${route}: ${res.text} is not among ${JSON.stringify(documented)}`);
        }
      }
      expect(mismatches).toEqual([]);
      expect(routes.length).toBeGreaterThan(5);
    });

    it('answers a malformed path parameter with the documented 400, on every route that takes one', async () => {
      const mismatches: string[] = [];
      for (const { route, method, path, operation } of apiOperations()) {
        for (const param of (operation.parameters ?? []).filter((p) => p.in === 'path')) {
          // Every other path parameter well-formed, this one malformed.
          const url = path.replace(/\{(\w+)\}/g, (_match, name: string) =>
            name === param.name ? 'not%20valid' : name === 'id' ? '6650c0ffee0000000000a001' : 'thermostat-kitchen',
          );
          const call = request(t.http)[method as 'get'](url);
          const res = await (operation.requestBody ? call.send({}) : call);
          const documented = Object.values(examplesOf(operation.responses['400'])).filter(
            (body) => (body as { details?: Array<{ path: string }> }).details?.[0]?.path === param.name,
          );
          if (res.status !== 400) mismatches.push(`${route} ${param.name}: ${res.status}`);
          else if (method !== 'head' && !documented.some((body) => isDeepStrictEqual(body, res.body))) {
            mismatches.push(`${route} ${param.name}: ${res.text} is not among ${JSON.stringify(documented)}`);
          }
        }
      }
      expect(mismatches).toEqual([]);
    });
  });
});
