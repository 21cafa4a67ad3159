import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';

const ROOT = join(import.meta.dirname, '..');
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
    await t.app.listen(0, '127.0.0.1');
    baseUrl = (await t.app.getUrl()).replace('[::1]', '127.0.0.1');
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
