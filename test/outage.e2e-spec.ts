import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { type MongoJavaServer, startMongoJavaServer } from '../src/database/mongo-java-server.js';
import { freePort } from './support/processes.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const DB_TIMEOUT_MS = 1_500;
/** Generous: the property is "bounded, never hangs", not a speed target. */
const BOUND_MS = 15_000;

describe('Database outage', () => {
  let dir: string;
  let port: number;
  let engine: MongoJavaServer;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-outage-'));
    port = await freePort();
    // A database of the test's own, on disk, so it can be stopped and started again under
    // the running service without losing what was written.
    engine = await startMongoJavaServer({ port, dataFile: join(dir, 'outage.mv') });
    t = await createTestApp({ config: { database: { uri: `mongodb://127.0.0.1:${port}/outage`, timeoutMs: DB_TIMEOUT_MS } } });
  });

  afterAll(async () => {
    await t?.close();
    await engine?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while the database is down, recovers by itself when it returns, and loses no acknowledged write', async () => {
    const acknowledged: string[] = [];
    const write = async (n: number) => {
      const res = await request(t.http)
        .post('/api/devices')
        .send({ myId: `outage-${n}`, deviceUID: `UID-${n}` });
      if (res.status === 201) acknowledged.push(res.body._id);
      return res.status;
    };
    for (let n = 0; n < 10; n += 1) expect(await write(n)).toBe(201);

    // Writes in flight while the engine goes down: each is acknowledged or refused, never 500.
    const inFlight = Array.from({ length: 30 }, (_, i) => write(100 + i));
    await engine.stop();
    const statuses = await Promise.all(inFlight);
    expect(statuses.filter((status) => status !== 201 && status !== 503)).toEqual([]);

    const downAt = Date.now();
    const read = await request(t.http).get('/api/devices');
    const timeTo503 = Date.now() - downAt;
    expect(read.status).toBe(503);
    expect(read.body).toEqual({ statusCode: 503, error: 'Service Unavailable', message: expect.any(String) });
    expect(timeTo503).toBeLessThan(BOUND_MS);
    const refusedWrite = await request(t.http).post('/api/devices').send({ myId: 'while-down', deviceUID: 'UID-down' });
    expect(refusedWrite.status).toBe(503);
    const readiness = await request(t.http).get('/health/ready');
    expect(readiness.status).toBe(503);
    expect(readiness.body.details).toEqual([{ path: 'database', code: 'down', message: expect.any(String) }]);
    expect((await request(t.http).get('/health')).status).toBe(200);

    engine = await startMongoJavaServer({ port, dataFile: join(dir, 'outage.mv') });
    const upAt = Date.now();
    let recovered = false;
    while (!recovered && Date.now() - upAt < 30_000) {
      recovered = (await request(t.http).get('/api/devices')).status === 200;
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const timeToRecover = Date.now() - upAt;
    expect(recovered).toBe(true);
    expect((await request(t.http).get('/health/ready')).status).toBe(200);
    expect(await write(1000)).toBe(201);

    const stored = await t.devices.countDocuments({ _id: { $in: acknowledged } });
    expect(stored).toBe(acknowledged.length);
    console.log(
      `outage: 503 after ${timeTo503} ms (DB_TIMEOUT_MS ${DB_TIMEOUT_MS}); recovered ${timeToRecover} ms after the engine returned; ${acknowledged.length} acknowledged writes, ${stored} stored`,
    );
  });
});
