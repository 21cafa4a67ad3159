import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { duplicateKeyField } from '../../src/common/filters/all-exceptions.filter.js';
import { installMongoJavaServer, type MongoJavaServer, startMongoJavaServer } from '../../src/database/mongo-java-server.js';
import { resolveDatabase } from '../../src/database/resolve-database.js';
import { isAlive } from '../support/processes.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

const ENGINE_TIMEOUT_MS = 90_000;

/** The pids of this process's direct children, read from /proc. */
function childPids(): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name before it may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) pids.add(Number(entry));
    } catch {
      // The process ended while the folder was being read.
    }
  }
  return pids;
}

const thingSchema = new mongoose.Schema({ label: String, size: Number });

/** Runs `use` with a model on a fresh connection to the engine, closing the connection after. */
type Things = ReturnType<typeof thingModel>;
const thingModel = (connection: mongoose.Connection) => connection.model('Thing', thingSchema);

async function withThings<T>(server: MongoJavaServer, use: (things: Things) => Promise<T>): Promise<T> {
  const connection = await mongoose
    .createConnection(`mongodb://127.0.0.1:${server.port}/x`, { serverSelectionTimeoutMS: 10_000 })
    .asPromise();
  try {
    // As the service does at start-up: the collection exists before the first write, so
    // Mongoose's automatic createCollection cannot race it (the H2 backend fails that race).
    const things = thingModel(connection);
    await things.init();
    return await use(things);
  } finally {
    await connection.close();
  }
}

describe('mongo-java-server', () => {
  let dir: string;
  const running: MongoJavaServer[] = [];

  const start = async (options: { dataFile?: string } = {}) => {
    const server = await startMongoJavaServer(options);
    running.push(server);
    return server;
  };

  beforeAll(async () => {
    await installMongoJavaServer();
    dir = mkdtempSync(join(tmpdir(), 'refmany-engine-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('startMongoJavaServer({ dataFile })', () => {
    it(
      'keeps a document written before a stop when started again on the same file',
      async () => {
        const dataFile = join(dir, 'engine.mv');
        const first = await start({ dataFile });
        const written = await withThings(first, (things) => things.create({ label: 'survivor', size: 3 }));
        await first.stop();

        const second = await start({ dataFile });
        const found = await withThings(second, (things) => things.findById(written._id).lean());
        expect(found).toMatchObject({ label: 'survivor', size: 3 });
      },
      ENGINE_TIMEOUT_MS,
    );
  });

  describe('startMongoJavaServer() in memory', () => {
    it(
      'loses the data when started again',
      async () => {
        const first = await start();
        await withThings(first, async (things) => {
          await things.create({ label: 'ephemeral' });
          expect(await things.countDocuments()).toBe(1);
        });
        await first.stop();

        const second = await start();
        expect(await withThings(second, (things) => things.countDocuments())).toBe(0);
      },
      ENGINE_TIMEOUT_MS,
    );
  });

  describe('MongoJavaServer.stop()', () => {
    it(
      'ends the JVM, whose pid is gone afterwards, and resolves again when called twice',
      async () => {
        const server = await start();
        expect(server.port).toBeGreaterThan(0);
        expect(isAlive(server.pid)).toBe(true);
        await server.stop();
        expect(isAlive(server.pid)).toBe(false);
        expect(() => process.kill(server.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
        await expect(server.stop()).resolves.toBeUndefined();
      },
      ENGINE_TIMEOUT_MS,
    );
  });
});

describe('resolveDatabase', () => {
  it('returns the external database for a uri and starts nothing', async () => {
    const messages: string[] = [];
    const before = childPids();
    const engine = await resolveDatabase({ uri: 'mongodb://example:27017/x', log: (message) => messages.push(message) });
    expect(engine).toMatchObject({ name: 'external', uri: 'mongodb://example:27017/x', persistent: true });
    expect([...childPids()].filter((pid) => !before.has(pid))).toEqual([]);
    expect(messages).toEqual([expect.stringContaining('external')]);
    await expect(engine.stop()).resolves.toBeUndefined();
  });

  it('never logs the credentials of an external uri', async () => {
    const messages: string[] = [];
    const engine = await resolveDatabase({ uri: 'mongodb://admin:s3cret@example:27017/x', log: (message) => messages.push(message) });
    expect(engine.uri).toBe('mongodb://admin:s3cret@example:27017/x');
    expect(messages.join('\n')).toContain('example:27017');
    expect(messages.join('\n')).not.toContain('s3cret');
  });
});

describe('Duplicate keys on the run’s database', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('reports a duplicate myId as code 11000 with the index and key in the message', async () => {
    await t.clear();
    await t.devices.create({ myId: 'dup', deviceUID: 'uid-1' });
    const error = await t.devices.create({ myId: 'dup', deviceUID: 'uid-2' }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(mongoose.mongo.MongoServerError);
    const serverError = error as mongoose.mongo.MongoServerError;
    expect(serverError.code).toBe(11000);
    // The exact wording the unit test of duplicateKeyField relies on, per engine: FerretDB
    // words it its own way and, like mongo-java-server, gives no keyValue (README, Running on FerretDB).
    const engine = process.env.TEST_DATABASE_ENGINE;
    expect(serverError.message).toMatch(
      engine === 'ferretdb'
        ? /^Duplicate key violation on the requested collection: Index 'myId_1'$/
        : /^E11000 duplicate key error collection: [\w-]+\.devices index: myId_1 dup key: \{ myId: "dup" \}$/,
    );
    if (engine === 'mongo-java-server' || engine === 'ferretdb') expect(serverError.keyValue).toBeUndefined();
    else expect(serverError.keyValue).toEqual({ myId: 'dup' });
    expect(duplicateKeyField(serverError)).toBe('myId');
    expect(await t.devices.countDocuments({ myId: 'dup' })).toBe(1);
  });
});
