import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type BrowserContext, type Locator } from 'playwright-core';
import request from 'supertest';
import { freePort, runService, type ServiceProcess, stopService } from './support/processes.js';
import { launchChromium, SwaggerUi } from './support/swagger-ui.js';
import { createTestApp, listen, type TestApp } from './support/test-app.js';

/**
 * The API's documentation as its readers use it: the OpenAPI document at /docs-json, a client
 * generated from it, Swagger UI at /docs in a browser, and the README's requests.http.
 */

const ROOT = join(import.meta.dirname, '..');

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
  required?: boolean;
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

    it('sends no conditional header by default: If-Match and If-None-Match have an empty first example (Swagger UI fills it in)', () => {
      const headers = apiOperations().flatMap(({ route, operation }) =>
        (operation.parameters ?? [])
          .filter((param) => param.in === 'header' && (param.name === 'If-Match' || param.name === 'If-None-Match'))
          .map((param) => ({ route, param })),
      );
      expect(headers.length).toBeGreaterThanOrEqual(10);
      const wrong = headers.flatMap(({ route, param }) => {
        const values = Object.values(param.examples ?? {}).map((example) => example.value);
        return param.required || param.schema?.example !== undefined || values[0] !== '' || values.length < 2
          ? [`${route} ${param.name}: ${JSON.stringify(param)}`]
          : [];
      });
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

const OPENAPI_TYPESCRIPT = join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const CALLER = join(ROOT, 'test', 'openapi-client', 'caller.ts');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head'];

interface Run {
  code: number;
  output: string;
}

/** Runs a Node script as its own process, bounded in time; never throws for a non-zero exit. */
function runNode(args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** tsc --strict over the caller and the generated types, as an SDK user's project would have it. */
async function compile(dir: string, emit: boolean): Promise<Run> {
  const compilerOptions = {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2023',
    lib: ['es2023', 'dom'],
    types: ['node'],
    skipLibCheck: true,
    ...(emit ? { outDir: 'out', rootDir: '.' } : { noEmit: true }),
  };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['caller.ts'] }));
  return runNode([TSC, '--project', dir, '--pretty', 'false'], dir);
}

describe('a TypeScript client generated from /docs-json with openapi-typescript', () => {
  let t: TestApp;
  let baseUrl: string;
  let work: string;
  let document: {
    paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: Array<Record<string, unknown>> }>>;
  };

  beforeAll(async () => {
    t = await createTestApp();
    baseUrl = await listen(t);
    document = (await request(t.http).get('/docs-json').expect(200)).body;
    // Inside the project, so that the compiled caller finds openapi-fetch in node_modules.
    await mkdir(join(ROOT, '.cache'), { recursive: true });
    work = await mkdtemp(join(ROOT, '.cache', 'openapi-client-'));
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** openapi-typescript's own CLI, on `source` (a URL or a file), into `dir`/openapi.d.ts; returns the types. */
  async function generate(source: string, dir: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const generated = await runNode([OPENAPI_TYPESCRIPT, source, '--output', join(dir, 'openapi.d.ts')], dir);
    expect(generated).toMatchObject({ code: 0 });
    await copyFile(CALLER, join(dir, 'caller.ts'));
    return readFile(join(dir, 'openapi.d.ts'), 'utf8');
  }

  it('types the account id and the device keys as strings (the account id was Record<string, never>)', async () => {
    const types = await generate(`${baseUrl}/docs-json`, join(work, 'types'));
    const linkDevice = types.slice(types.indexOf('    linkDevice: {'));
    expect(linkDevice).toMatch(/path: \{\s+\/\*\*[^*]*\*\/\s+id: string;\s+\/\*\*[^*]*\*\/\s+fk: string;/);
    // Only the document's empty webhooks and $defs may be empty records, never a parameter.
    expect(types.match(/Record<string, never>/g)).toHaveLength(2);
    expect(types).not.toContain('Function');
  }, 60_000);

  it('compiles, under tsc --strict, a caller of every operation that then gets a documented answer from each', async () => {
    const dir = join(work, 'caller');
    await generate(`${baseUrl}/docs-json`, dir);
    const compiled = await compile(dir, true);
    expect(compiled).toEqual({ code: 0, output: '' });

    const ran = await runNode([join(dir, 'out', 'caller.js'), baseUrl], dir);
    expect(ran).toMatchObject({ code: 0 });
    const calls = JSON.parse(ran.output.trim().split('\n').at(-1)!) as Array<{ operation: string; status: number }>;
    const all = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods)
        .filter((method) => METHODS.includes(method))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect([...new Set(calls.map((c) => c.operation))].sort()).toEqual(all.sort());
    const undocumented = calls.filter(({ operation, status }) => {
      const [method, path] = operation.split(' ');
      return !(String(status) in document.paths[path][method.toLowerCase()].responses);
    });
    expect(undocumented).toEqual([]);
    expect(calls.every(({ status }) => status < 300)).toBe(true);
  }, 180_000);

  it('fails to compile the same caller if the account id were typed as an object, as it was', async () => {
    // The document as the Swagger plugin made it before: the account id a $ref to Function.
    const broken = structuredClone(document) as typeof document & { components: { schemas: Record<string, unknown> } };
    broken.components.schemas.Function = { type: 'object', properties: {} };
    for (const methods of Object.values(broken.paths)) {
      for (const operation of Object.values(methods)) {
        for (const param of operation.parameters ?? []) {
          if (param.in === 'path' && param.name === 'id' && String((param.schema as { pattern?: string }).pattern).includes('{24}')) {
            param.schema = { $ref: '#/components/schemas/Function' };
          }
        }
      }
    }
    const dir = join(work, 'broken');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'openapi.json'), JSON.stringify(broken));
    await generate(join(dir, 'openapi.json'), dir);
    const compiled = await compile(dir, false);
    expect(compiled.code).not.toBe(0);
    expect(compiled.output).toMatch(/caller\.ts\(\d+,\d+\): error TS\d+: .*Record<string, never>/);
  }, 120_000);
});

/**
 * The README's flow done in Swagger UI, in headless Chromium, against the service started as
 * a real process with API_KEYS: the account id and device keys are typed into plain text
 * fields, and every answer is read from the response block Swagger UI shows.
 */

const READ_KEY = 'swagger-ui-read-key-0001';
const WRITE_KEY = 'swagger-ui-write-key-0001';
const SCREENSHOTS = join(ROOT, 'test-results', 'swagger-ui');

describe('Swagger UI at /docs, driven in Chromium', () => {
  let service: ServiceProcess;
  let uri: string;
  let profile: string;
  let browser: BrowserContext;
  let ui: SwaggerUi;

  const shoot = (name: string, operation?: Locator) => ui.screenshot(join(SCREENSHOTS, `${name}.png`), operation);

  beforeAll(async () => {
    // A database of its own, empty, so that the flow's myIds are free on every engine.
    const database = new URL(process.env.MONGODB_URI!);
    database.pathname = `${database.pathname}_swagger_ui`;
    uri = database.toString();
    const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
    await client.db().dropDatabase();
    await client.close();

    await mkdir(SCREENSHOTS, { recursive: true });
    service = runService({ MONGODB_URI: uri, API_KEYS: `${READ_KEY}:read,${WRITE_KEY}:write` }, await freePort());
    await service.waitForLine(/Listening on/, 90_000);
    profile = await mkdtemp(join(tmpdir(), 'refmany-chromium-'));
    browser = await launchChromium(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    // Generous for a loaded machine, and still bounded: every wait below ends by then.
    page.setDefaultTimeout(30_000);
    await page.goto(`${service.url}/docs`, { timeout: 30_000 });
    await page.locator('.opblock').first().waitFor();
    ui = new SwaggerUi(page);
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    if (service && service.child.exitCode === null) {
      service.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 20_000)));
      const stopped = await Promise.race([service.exited.then(() => true), late]);
      clearTimeout(timer);
      if (!stopped) service.child.kill('SIGKILL');
    }
    if (profile) await rm(profile, { recursive: true, force: true });
    if (uri) {
      const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
      await client.db().dropDatabase();
      await client.close();
    }
  }, 120_000);

  it('lists every operation, the health checks without a lock', async () => {
    await shoot('01-overview');
    const { paths } = (await (await fetch(`${service.url}/docs-json`)).json()) as { paths: Record<string, object> };
    const operations = Object.values(paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
    expect(await ui.page.locator('.opblock').count()).toBe(operations);
    const locked = (id: string) => ui.page.locator(`#operations-health-${id} .authorization__btn`).count();
    expect(await locked('checkLiveness')).toBe(0);
    expect(await locked('checkReadiness')).toBe(0);
    expect(await ui.page.locator('#operations-devices-createDevice .authorization__btn').count()).toBe(1);
  }, 120_000);

  it('shows the 401 of a call without a key as documented, with the documented body', async () => {
    const create = await ui.tryOut('devices', 'createDevice');
    await ui.typeBody(create, { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' });
    const answer = await ui.execute(create);
    await shoot('02-unauthorized', create);
    expect(answer).toEqual({ status: 401, documented: true, body: await ui.documentedExample(create, 401) });
  }, 120_000);

  it('authorizes a read key: reads answer, a write answers the documented 403', async () => {
    await ui.authorize('api-key', READ_KEY);
    const list = await ui.tryOut('devices', 'findDevices');
    expect(await ui.execute(list)).toMatchObject({ status: 200, documented: true, body: [] });

    const create = await ui.tryOut('devices', 'createDevice');
    await ui.typeBody(create, { myId: 'thermostat-kitchen', deviceUID: 'UID-0017-A3' });
    const answer = await ui.execute(create);
    await shoot('03-forbidden', create);
    expect(answer).toEqual({ status: 403, documented: true, body: await ui.documentedExample(create, 403) });
  }, 120_000);

  describe('with a write key', () => {
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      await ui.logout('api-key');
      await ui.authorize('bearer', WRITE_KEY);
    }, 120_000);

    it('creates two devices', async () => {
      const create = await ui.tryOut('devices', 'createDevice');
      for (const [myId, deviceUID] of [
        ['thermostat-kitchen', 'UID-0017-A3'],
        ['lamp-hall', 'UID-0042-B1'],
      ]) {
        await ui.typeBody(create, { myId, deviceUID });
        const answer = await ui.execute(create);
        expect(answer).toMatchObject({
          status: 201,
          documented: true,
          body: { myId, deviceUID, _id: expect.stringMatching(/^[0-9a-f]{24}$/) },
        });
        ids[myId] = (answer.body as { _id: string })._id;
      }
      await shoot('04-second-device-created', create);
    }, 120_000);

    it('creates an account with the first device, named by myId', async () => {
      const create = await ui.tryOut('accounts', 'createAccount');
      await ui.typeBody(create, { name: 'Kitchen', deviceIds: ['thermostat-kitchen'] });
      const answer = await ui.execute(create);
      await shoot('05-account-created', create);
      expect(answer).toMatchObject({ status: 201, documented: true, body: { name: 'Kitchen', deviceIds: [ids['thermostat-kitchen']] } });
      ids.account = (answer.body as { _id: string })._id;
    }, 120_000);

    it('links the second device by myId, typing the account id into its field', async () => {
      const link = await ui.tryOut('account_devices', 'linkDevice');
      await ui.type(link, 'id', ids.account);
      await ui.type(link, 'fk', 'lamp-hall');
      const answer = await ui.execute(link);
      await shoot('06-linked-by-myId', link);
      expect(answer).toMatchObject({ status: 200, documented: true, body: { _id: ids['lamp-hall'], myId: 'lamp-hall' } });
    }, 120_000);

    it('reads the account with include=devices: both devices, in the order they were linked', async () => {
      const read = await ui.tryOut('accounts', 'findAccount');
      await ui.type(read, 'id', ids.account);
      await ui.choose(read, 'include', 'devices');
      const answer = await ui.execute(read);
      await shoot('07-account-with-devices', read);
      expect(answer.status).toBe(200);
      expect(answer.documented).toBe(true);
      const account = answer.body as { deviceIds: string[]; devices: Array<{ myId: string }> };
      expect(account.deviceIds).toEqual([ids['thermostat-kitchen'], ids['lamp-hall']]);
      expect(account.devices.map((device) => device.myId)).toEqual(['thermostat-kitchen', 'lamp-hall']);
    }, 120_000);

    it('deletes the first device, and the account no longer references it', async () => {
      const remove = await ui.tryOut('devices', 'deleteDevice');
      await ui.type(remove, 'id', 'thermostat-kitchen');
      const deleted = await ui.execute(remove);
      await shoot('08-first-device-deleted', remove);
      expect(deleted).toMatchObject({ status: 200, documented: true, body: { count: 1 } });

      const read = await ui.tryOut('accounts', 'findAccount');
      const answer = await ui.execute(read);
      await shoot('09-account-after-delete', read);
      expect(answer).toMatchObject({
        status: 200,
        documented: true,
        body: { deviceIds: [ids['lamp-hall']], devices: [{ myId: 'lamp-hall' }] },
      });
    }, 120_000);
  });
});

/** requests.http, run as a user runs it: httpyac against the service started as a real process. */

const HTTPYAC = join(ROOT, 'node_modules', 'httpyac', 'bin', 'httpyac.js');
const BASE_LINE = /^@base = http:\/\/127\.0\.0\.1:3000\/api$/m;

interface HttpyacReport {
  summary: { totalRequests: number; successRequests: number; totalTests: number; successTests: number };
  requests: Array<{
    title?: string;
    response?: { statusCode: number };
    testResults?: Array<{ message: string; status: string; error?: { displayMessage?: string } }>;
  }>;
}

/** `httpyac send requests.http --all --json` in `dir`, with its JSON report. */
function httpyac(dir: string): Promise<{ code: number | null; report: HttpyacReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HTTPYAC, 'send', 'requests.http', '--all', '--json'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        resolve({ code, report: JSON.parse(stdout) as HttpyacReport, stderr });
      } catch {
        reject(new Error(`httpyac exited ${code} without a JSON report:\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** What failed, readably: the request's title, its status and the failing check's message. */
function failures(report: HttpyacReport): string[] {
  return report.requests.flatMap((request) =>
    (request.testResults ?? [])
      .filter((result) => result.status !== 'SUCCESS')
      .map(
        (result) =>
          `${request.title} (${request.response?.statusCode ?? 'no answer'}): ${result.message} ${result.error?.displayMessage ?? ''}`,
      ),
  );
}

describe('requests.http (bug: httpyac ran 5 of its 11 requests, and a second run got 409s)', () => {
  let service: ServiceProcess;
  let dir: string;
  let requestCount: number;

  beforeAll(async () => {
    const source = readFileSync(join(ROOT, 'requests.http'), 'utf8');
    expect(source).toMatch(BASE_LINE);
    requestCount = source.match(/^###/gm)?.length ?? 0;
    // The file as a user has it, pointed at this test's service instead of port 3000.
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'refmany-requests-'));
    writeFileSync(join(dir, 'requests.http'), source.replace(BASE_LINE, `@base = http://127.0.0.1:${port}/api`));
    service = runService({ MONGODB_URI: process.env.MONGODB_URI! }, port);
    await service.waitForLine(/"msg":"Listening on /, 60_000);
  }, 90_000);

  afterAll(async () => {
    if (service) await stopService(service);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every request with httpyac, each passing the checks the file makes of its answer', async () => {
    expect(requestCount).toBe(11);
    const { code, report, stderr } = await httpyac(dir);
    expect(failures(report)).toEqual([]);
    expect(report.summary.totalRequests).toBe(requestCount);
    expect(report.summary.successRequests).toBe(requestCount);
    // Every request checks something, and every check passed.
    expect(report.requests.every((request) => (request.testResults ?? []).length > 0)).toBe(true);
    expect(report.summary.successTests).toBe(report.summary.totalTests);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  }, 60_000);

  it('runs again on the same database with the same result', async () => {
    const { code, report } = await httpyac(dir);
    expect(failures(report)).toEqual([]);
    expect(report.summary.successRequests).toBe(requestCount);
    expect(code).toBe(0);
  }, 60_000);
});
