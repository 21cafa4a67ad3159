import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { freePort, isAlive, runService, type ServiceProcess } from './support/processes.js';

/** The service as a real process (dist/main.js): signals, start-up failures, its log lines. */

const STACK_LINE = /^\s+at /;

async function waitReady(service: ServiceProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null) throw new Error(`exited early:\n${service.lines.join('\n')}`);
    try {
      if ((await fetch(`${service.url}/health/ready`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`not ready in time:\n${service.lines.join('\n')}`);
}

describe('Graceful shutdown', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-shutdown-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'finishes the requests in flight at %s with 2xx, exits 0 and leaves no JVM behind',
    async (signal) => {
      const port = await freePort();
      const service = runService({ DATA_DIR: join(dir, signal), SHUTDOWN_TIMEOUT_MS: '60000' }, port);
      const engineLine = await service.waitForLine(/JVM pid \d+/);
      const jvm = Number(/JVM pid (\d+)/.exec(engineLine)![1]);
      const uri = /at (mongodb:\/\/[^\s"]+)/.exec(engineLine)![1];
      await waitReady(service);

      // An account with enough devices that reading it with include=devices takes a while on
      // this engine, seeded straight into the service's own embedded database.
      const connection = await mongoose.createConnection(uri).asPromise();
      const ids = Array.from({ length: 600 }, () => new mongoose.Types.ObjectId());
      const now = new Date();
      await connection
        .collection('devices')
        .insertMany(ids.map((_id, n) => ({ _id, myId: `slow-${n}`, deviceUID: `UID-${n}`, createdAt: now, updatedAt: now })));
      const { insertedId } = await connection
        .collection('accounts')
        .insertOne({ name: 'slow', deviceIds: ids, createdAt: now, updatedAt: now });
      await connection.close();

      const inFlight = Array.from({ length: 4 }, () =>
        fetch(`${service.url}/api/accounts/${insertedId.toHexString()}?include=devices`).then(
          async (res) => ({ status: res.status, devices: ((await res.json()) as { devices?: unknown[] }).devices?.length }),
          (error: Error) => ({ status: 0, devices: error.message }),
        ),
      );
      // Long enough for every request to have been accepted, shorter than they take together.
      await new Promise((resolve) => setTimeout(resolve, 400));
      service.child.kill(signal);

      const results = await Promise.all(inFlight);
      expect(results).toEqual(Array.from({ length: 4 }, () => ({ status: 200, devices: 600 })));
      expect(await service.exited).toBe(0);
      expect(isAlive(jvm)).toBe(false);
      console.log(`${signal}: ${results.length} requests in flight completed with 200 during the graceful shutdown`);
    },
    90_000,
  );
});

describe('Start-up failures', () => {
  let blocker: Server;
  let busyPort: number;

  beforeAll(async () => {
    busyPort = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(busyPort, '127.0.0.1', () => resolve()));
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  const external = () => process.env.MONGODB_URI!;

  it.each([
    [
      'the port is in use',
      () => ({ MONGODB_URI: external(), PORT: String(busyPort) }),
      /port \d+ on 127\.0\.0\.1 is already in use: .*set PORT/,
    ],
    [
      'MONGODB_URI is not a MongoDB URI',
      () => ({ MONGODB_URI: 'http://example.org/db' }),
      /Invalid configuration: MONGODB_URI must be a mongodb:\/\//,
    ],
    [
      'MONGODB_URI does not answer',
      () => ({ MONGODB_URI: 'mongodb://127.0.0.1:9/refmany', DB_TIMEOUT_MS: '1000' }),
      /cannot reach the database at MONGODB_URI within 1000 ms .*check MONGODB_URI/,
    ],
    ['a variable is out of range', () => ({ MONGODB_URI: external(), PORT: 'not-a-port' }), /Invalid configuration: .*PORT/],
    [
      'API_KEYS holds keys under 16 characters (bug: r:read,w:write was accepted, and a fuzzer guessed the keys)',
      () => ({ MONGODB_URI: external(), API_KEYS: 'r:read,w:write' }),
      /^refmany could not start: Invalid configuration: API_KEYS: every key must be at least 16 characters long$/,
    ],
    [
      'API_KEYS holds one key under 16 characters beside a long one',
      () => ({ MONGODB_URI: external(), API_KEYS: 'a-long-read-key-0001:read, short-w-key:write' }),
      /^refmany could not start: Invalid configuration: API_KEYS: every key must be at least 16 characters long$/,
    ],
    [
      'no database engine can start',
      () => ({ PATH: '/nonexistent', MONGOMS_RUNTIME_DOWNLOAD: 'false', DATA_DIR: '' }),
      /No database available: set MONGODB_URI .*Java 17\+ and Maven/,
    ],
  ])(
    'exits non-zero with one line saying what to do when %s',
    async (_case, env, expected) => {
      const service = runService(env(), await freePort());
      const code = await service.exited;
      expect(code).not.toBe(0);
      // Informational log lines of a start that got as far as listening may precede it; the
      // failure itself is one line, and nothing is a stack trace.
      const output = service.lines.filter((line) => line.trim() !== '' && !/^\{"level":"info"/.test(line));
      expect(output).toHaveLength(1);
      expect(output[0]).toMatch(/^refmany could not start: /);
      expect(output[0]).toMatch(expected);
      expect(service.lines.some((line) => STACK_LINE.test(line))).toBe(false);
    },
    60_000,
  );
});

describe('API keys of 16 characters or more', () => {
  it('start the service, which then asks for one of them', async () => {
    const service = runService(
      { MONGODB_URI: process.env.MONGODB_URI!, API_KEYS: 'read-key-16-chars:read,write-key-16-char:write' },
      await freePort(),
    );
    try {
      await waitReady(service);
      expect((await fetch(`${service.url}/api/devices`)).status).toBe(401);
      expect((await fetch(`${service.url}/api/devices`, { headers: { 'X-API-Key': 'read-key-16-chars' } })).status).toBe(200);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  }, 60_000);
});

describe('Request logs', () => {
  let service: ServiceProcess;

  beforeAll(async () => {
    service = runService({ MONGODB_URI: process.env.MONGODB_URI! }, await freePort());
    await waitReady(service);
  }, 60_000);
  afterAll(async () => {
    service.child.kill('SIGTERM');
    await service.exited;
  });

  it('writes one JSON line per request with method, route, status, duration and the request id it echoes', async () => {
    const given = await fetch(`${service.url}/api/devices/some-device-id`, { headers: { 'X-Request-Id': 'trace-42' } });
    expect(given.status).toBe(404);
    expect(given.headers.get('x-request-id')).toBe('trace-42');
    const generated = await fetch(`${service.url}/api/devices`);
    const generatedId = generated.headers.get('x-request-id');
    expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);

    const line = JSON.parse(await service.waitForLine(/"requestId":"trace-42"/, 5_000));
    expect(line).toMatchObject({
      level: 'warn',
      method: 'GET',
      route: '/api/devices/:id',
      url: '/api/devices/some-device-id',
      status: 404,
      requestId: 'trace-42',
    });
    expect(typeof line.durationMs).toBe('number');
    const other = JSON.parse(await service.waitForLine(new RegExp(`"requestId":"${generatedId}"`), 5_000));
    expect(other).toMatchObject({ level: 'info', method: 'GET', route: '/api/devices', status: 200 });
    expect(service.lines.filter((entry) => entry.includes('"requestId":"trace-42"'))).toHaveLength(1);
  });

  it('never logs an API key', async () => {
    await fetch(`${service.url}/api/devices`, { headers: { Authorization: 'Bearer very-secret-key-1', 'X-API-Key': 'very-secret-key-2' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(service.lines.some((line) => line.includes('very-secret-key'))).toBe(false);
  });
});

describe('The container health check (dist/health/healthcheck.js, the Dockerfile HEALTHCHECK)', () => {
  let service: ServiceProcess;
  let port: number;

  const healthcheck = (path: string, env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'health', 'healthcheck.js'), path], {
        env: { PATH: process.env.PATH, ...env },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      child.once('close', (code) => resolve({ code, stderr }));
    });

  beforeAll(async () => {
    port = await freePort();
    // As in the container: listening on every interface, the check reads PORT like the service.
    service = runService({ MONGODB_URI: process.env.MONGODB_URI!, HOST: '0.0.0.0' }, port);
    await waitReady(service);
  }, 60_000);
  afterAll(async () => {
    service.child.kill('SIGTERM');
    await service.exited;
  });

  it('exits 0 when the service answers /health and /health/ready', async () => {
    expect(await healthcheck('/health', { PORT: String(port), HOST: '0.0.0.0' })).toEqual({ code: 0, stderr: '' });
    expect(await healthcheck('/health/ready', { PORT: String(port), HOST: '0.0.0.0' })).toEqual({ code: 0, stderr: '' });
  });

  it('exits 1 saying why when nothing answers, or the answer is not a 2xx', async () => {
    const nothing = await healthcheck('/health', { PORT: String(await freePort()) });
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^healthcheck: http:\/\/127\.0\.0\.1:\d+\/health did not answer/);
    const notFound = await healthcheck('/no-such-route', { PORT: String(port) });
    expect(notFound).toEqual({ code: 1, stderr: expect.stringMatching(/answered 404/) });
  });
});
