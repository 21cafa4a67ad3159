import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { freePort, isAlive, runService, type ServiceProcess } from './support/processes.js';

/**
 * DESIGN.md Invariant 5 on the embedded engine: an acknowledged write survives the service and
 * its JVM killed outright (kill -9), together or the JVM alone, and is there when the service
 * starts again on the same DATA_DIR. The H2 store used to commit about once a second, so such a
 * kill lost the writes of the last second (31 of 200 create-and-links, 4 of 260 creates).
 */

/** Writes in flight at once, and enough of them acknowledged before the kill that it lands mid-load. */
const CONCURRENCY = 8;
const ACKNOWLEDGED_BEFORE_KILL = 80;
/** Bounds the load whatever happens. */
const MAX_REQUESTS = 2_000;

interface Started {
  service: ServiceProcess;
  jvm: number;
  uri: string;
}

async function start(dataDir: string): Promise<Started> {
  // The embedded mongo-java-server on DATA_DIR, as `npm start` runs it; no mongod download probe.
  const service = runService({ DATA_DIR: dataDir, MONGOMS_RUNTIME_DOWNLOAD: 'false' }, await freePort());
  const engineLine = await service.waitForLine(/JVM pid \d+/, 90_000);
  await service.waitForLine(/"msg":"Listening on /, 60_000);
  return { service, jvm: Number(/JVM pid (\d+)/.exec(engineLine)![1]), uri: /at (mongodb:\/\/[^\s"]+)/.exec(engineLine)![1] };
}

async function stop({ service, jvm }: Started): Promise<void> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGTERM');
  await service.exited;
  if (isAlive(jvm)) process.kill(jvm, 'SIGKILL');
  await waitUntil(() => !isAlive(jvm));
}

async function waitUntil(done: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !done(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(done()).toBe(true);
}

/**
 * Sends `write(n)` from CONCURRENCY loops until `kill` has run and every loop has seen a failure
 * (the connection gone) or MAX_REQUESTS were sent. `kill` runs once ACKNOWLEDGED_BEFORE_KILL
 * writes were acknowledged, while the others are in flight. Returns the acknowledged results.
 */
async function loadThenKill<T>(write: (n: number) => Promise<T | undefined>, kill: () => void): Promise<T[]> {
  const acknowledged: T[] = [];
  let sent = 0;
  let killed = false;
  const loop = async () => {
    while (sent < MAX_REQUESTS) {
      const result = await write(sent++).catch(() => undefined);
      if (result !== undefined) acknowledged.push(result);
      if (!killed && acknowledged.length >= ACKNOWLEDGED_BEFORE_KILL) {
        killed = true;
        kill();
      }
      if (killed && result === undefined) return;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  expect(killed).toBe(true);
  return acknowledged;
}

async function countStored(uri: string, collection: string, ids: string[]): Promise<number> {
  const connection = await mongoose.createConnection(uri, { serverSelectionTimeoutMS: 10_000 }).asPromise();
  try {
    return await connection.collection(collection).countDocuments({ _id: { $in: ids.map((id) => new mongoose.Types.ObjectId(id)) } });
  } finally {
    await connection.close();
  }
}

describe('Acknowledged writes on the embedded H2 engine (bug: lost when the JVM was killed)', () => {
  let dir: string;
  const running: Started[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'refmany-durability-'));
  });
  afterAll(async () => {
    await Promise.all(running.map(stop));
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged create-and-link when the service and its JVM are killed together (kill -9)', async () => {
    const dataDir = join(dir, 'together');
    const first = await start(dataDir);
    running.push(first);
    const account = await fetch(`${first.service.url}/api/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'durable' }),
    }).then((response) => response.json() as Promise<{ _id: string }>);

    const acknowledged = await loadThenKill(
      async (n) => {
        const response = await fetch(`${first.service.url}/api/accounts/${account._id}/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ myId: `durable-${n}`, deviceUID: `UID-durable-${n}` }),
        });
        return response.status === 201 ? ((await response.json()) as { _id: string })._id : undefined;
      },
      () => {
        process.kill(first.service.child.pid!, 'SIGKILL');
        process.kill(first.jvm, 'SIGKILL');
      },
    );
    await first.service.exited;
    await waitUntil(() => !isAlive(first.jvm));

    const second = await start(dataDir);
    running.push(second);
    const stored = await countStored(second.uri, 'devices', acknowledged);
    const linked = await fetch(`${second.service.url}/api/accounts/${account._id}`)
      .then((response) => response.json() as Promise<{ deviceIds: string[] }>)
      .then(({ deviceIds }) => acknowledged.filter((id) => deviceIds.includes(id)).length);
    console.log(
      `kill -9 of service and JVM: ${acknowledged.length} create-and-links acknowledged, ${stored} devices stored, ${linked} linked after the restart`,
    );
    expect({ acknowledged: acknowledged.length, stored, linked }).toEqual({
      acknowledged: acknowledged.length,
      stored: acknowledged.length,
      linked: acknowledged.length,
    });
  }, 240_000);

  it('keeps every acknowledged create when the JVM alone is killed (kill -9)', async () => {
    const dataDir = join(dir, 'engine');
    const first = await start(dataDir);
    running.push(first);

    const acknowledged = await loadThenKill(
      async (n) => {
        const response = await fetch(`${first.service.url}/api/devices`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ myId: `engine-${n}`, deviceUID: `UID-engine-${n}` }),
        });
        // Once the engine is gone the service answers 503: not acknowledged, and the loop ends.
        return response.status === 201 ? ((await response.json()) as { _id: string })._id : undefined;
      },
      () => process.kill(first.jvm, 'SIGKILL'),
    );
    await stop(first);

    const second = await start(dataDir);
    running.push(second);
    const stored = await countStored(second.uri, 'devices', acknowledged);
    console.log(`kill -9 of the JVM alone: ${acknowledged.length} creates acknowledged, ${stored} stored after the restart`);
    expect(stored).toBe(acknowledged.length);
  }, 240_000);
});
