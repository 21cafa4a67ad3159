import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>>; required?: string[] }> };
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);
const ERROR_RESPONSE = '#/components/schemas/ErrorResponse';

/** Every route DESIGN.md names, as OpenAPI path templates. */
const ROUTES: Array<[string, string]> = [
  ['post', '/api/devices'],
  ['get', '/api/devices'],
  ['get', '/api/devices/count'],
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
        .map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
    );

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
      const all = operations().filter(({ route }) => route.split(' ')[1].startsWith('/api/'));
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
});
