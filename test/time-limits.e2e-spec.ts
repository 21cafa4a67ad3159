import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import request from 'supertest';
import { type MongoJavaServer, startMongoJavaServer } from '../src/database/mongo-java-server.js';
import { CommandRecorder } from './support/commands.js';
import { eventually } from './support/eventually.js';
import { postgresUrlOf, sql } from './support/postgres.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * DESIGN.md Invariant 4: no request keeps the database busy beyond DB_TIMEOUT_MS. Every command
 * the service sends carries that time limit (`maxTimeMS`), which FerretDB (and MongoDB) enforce
 * in the server: the query is stopped there, not only abandoned by the client. mongo-java-server
 * ignores time limits; there the socket timeout (twice DB_TIMEOUT_MS) ends the request's wait.
 */

const engine = process.env.TEST_DATABASE_ENGINE;
const DB_TIMEOUT_MS = 1_000;
const DEVICES = 60_000;
/** Distinct patterns in one filter: below the pattern checker's queue (filter.limits.ts), so only the database is slow. */
const PATTERNS = 90;
const FIELDS = ['deviceUID', 'myId'] as const;
/**
 * A legitimate slow count: 90 case-insensitive patterns on both text fields, none of which
 * matches, over 60,000 devices with long values, and no index that can help.
 */
const branches = Array.from({ length: PATTERNS }, (_, i) => FIELDS.map((field) => ({ field, pattern: `q${i}z` }))).flat();
const slowCount = `/api/devices/count?${branches.map(({ field, pattern }, i) => `where[or][${i}][${field}][ilike]=${pattern}`).join('&')}`;
const slowFilter = { $or: branches.map(({ field, pattern }) => ({ [field]: { $regex: pattern, $options: 'i' } })) };

/** FerretDB's PostgreSQL backends running a statement that started in [from, to] (PostgreSQL's clock), with when it started. */
function runningBetween(postgres: string, from: string, to: string): string[][] {
  return sql(
    postgres,
    `SELECT pid, query_start, left(query, 120) FROM pg_stat_activity
      WHERE application_name = 'FerretDB' AND state = 'active'
        AND query_start BETWEEN '${from}'::timestamptz AND '${to}'::timestamptz`,
  );
}

const now = (postgres: string) => sql(postgres, 'SELECT clock_timestamp()')[0][0];

describe('Every database operation carries a server-side time limit', () => {
  let t: TestApp;
  let inspector: MongoClient;
  let db: Db;
  let deviceId: string;

  let ownEngine: MongoJavaServer | undefined;

  beforeAll(async () => {
    let uri = process.env.MONGODB_URI!;
    // mongo-java-server runs an abandoned query on to its end, on an I/O thread that some of its
    // connections share: on the run's engine that would hold up other test files for seconds.
    // There this file gets an engine of its own.
    if (engine === 'mongo-java-server') {
      ownEngine = await startMongoJavaServer();
      uri = `mongodb://127.0.0.1:${ownEngine.port}/time-limits`;
    }
    inspector = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
    db = inspector.db();
    // The application before the data, so that its indexes are built while the collection is small.
    t = await createTestApp({ config: { database: { uri, timeoutMs: DB_TIMEOUT_MS }, metrics: { mode: 'public' } } });
    await t.clear();
    const filler = 'abcdefghij'.repeat(24);
    for (let start = 0; start < DEVICES; start += 2_000) {
      await db.collection('devices').insertMany(
        Array.from({ length: 2_000 }, (_, i) => ({
          myId: `slow-${start + i}-${filler.slice(0, 100)}`,
          deviceUID: `UID-${start + i}-${filler}`,
          rev: 0,
          createdAt: new Date(),
          updatedAt: new Date(),
        })),
      );
    }
    deviceId = (await db.collection('devices').findOne({ myId: `slow-7-${filler.slice(0, 100)}` }))!._id.toHexString();
  }, 180_000);
  afterAll(async () => {
    await inspector?.close();
    await t?.close();
    await ownEngine?.stop();
  });

  it('sends maxTimeMS with every find, count, aggregate, distinct, insert, update, delete and findAndModify', async () => {
    const recorder = new CommandRecorder(t.connection.getClient());
    try {
      const device = (await request(t.http).post('/api/devices').send({ myId: 'limited-1', deviceUID: 'UID-limited-1' }).expect(201)).body;
      await request(t.http).post('/api/devices').send({ myId: 'limited-2', deviceUID: 'UID-limited-2' }).expect(201);
      const account = (
        await request(t.http)
          .post('/api/accounts')
          .send({ name: 'limited', deviceIds: ['limited-1'] })
          .expect(201)
      ).body;
      const base = `/api/accounts/${account._id}`;
      await request(t.http).get('/api/devices?filter[where][myId][like]=^limited&filter[order]=createdAt DESC').expect(200);
      await request(t.http).get('/api/devices/count?where[myId]=limited-1').expect(200);
      await request(t.http).get('/api/devices/findOne?filter[where][myId]=limited-2').expect(200);
      await request(t.http).patch('/api/devices/limited-2').send({ deviceUID: 'UID-limited-2b' }).expect(200);
      await request(t.http).put(`${base}/devices/rel/limited-2`).expect(200);
      await request(t.http).get(`${base}?include=devices`).expect(200);
      await request(t.http).get(`${base}/devices?filter[limit]=1`).expect(200);
      await request(t.http).get(`${base}/devices/count`).expect(200);
      await request(t.http).head(`${base}/devices/rel/limited-1`).expect(200);
      await request(t.http).get(`/api/devices/${device._id}/accounts`).expect(200);
      await request(t.http).get(`/api/accounts?filter[where][deviceIds]=limited-1`).expect(200);
      await request(t.http).delete(`${base}/devices/rel/limited-2`).expect(204);
      await request(t.http)
        .post(`${base}/devices/rel`)
        .send({ ids: ['limited-2'] })
        .expect(200);
      await request(t.http)
        .put(`${base}/devices/rel`)
        .send({ ids: ['limited-2', 'limited-1'] })
        .expect(200);
      await request(t.http).patch(base).send({ name: 'limited again' }).expect(200);
      await request(t.http).delete('/api/devices/limited-1').expect(200);
      await request(t.http).delete(`${base}/devices`).expect(200);
      await request(t.http).delete(base).expect(200);
      // The sweeper's removal of the two deleted devices, about a second later.
      expect(await eventually(() => recorder.named('delete', 'devices').length > 0)).toBe(true);

      // A getMore continues the find whose limit it shares.
      const bounded = ['find', 'count', 'aggregate', 'distinct', 'insert', 'update', 'delete', 'findAndModify'];
      const sent = recorder.sent.filter((command) => bounded.includes(command.name));
      const names = [...new Set(sent.map((command) => command.name))].sort();
      expect(names).toEqual(['aggregate', 'delete', 'find', 'findAndModify', 'insert', 'update']);
      expect(
        sent.filter((command) => command.body.maxTimeMS !== DB_TIMEOUT_MS).map((command) => `${command.name} ${command.collection}`),
      ).toEqual([]);
      console.log(`time limits: ${sent.length} commands (${names.join(', ')}), every one with maxTimeMS ${DB_TIMEOUT_MS}`);
    } finally {
      recorder.stop();
    }
  }, 60_000);

  it('answers a count that runs past DB_TIMEOUT_MS with 503 in the error shape, and other requests meanwhile', async () => {
    // The patterns' safety verdicts, cached by a route that checks them and then finds no
    // account (404), so that the count below goes straight to the database.
    await request(t.http)
      .get(`/api/accounts/${new ObjectId().toHexString()}${slowCount.slice('/api'.length)}`)
      .expect(404);
    const recorder = new CommandRecorder(t.connection.getClient());
    try {
      const slow = request(t.http)
        .get(slowCount)
        .then((res) => res);
      expect(
        await eventually(
          () => recorder.named('aggregate', 'devices').some((command) => JSON.stringify(command.body).includes(`q${PATTERNS - 1}z`)),
          { everyMs: 5 },
        ),
      ).toBe(true);
      // Sent while the count runs in the database. The service answers them: where the engine
      // honours time limits, from the database as usual; mongo-java-server goes on counting after
      // the socket timeout, on an I/O thread that some of its connections share, so there a
      // request needing the database may get a 503 in its turn, but none waits on it unanswered.
      const [live, one, accounts, ready] = await Promise.all([
        request(t.http).get('/health'),
        request(t.http).get(`/api/devices/${deviceId}`),
        request(t.http).get('/api/accounts/count'),
        request(t.http).get('/health/ready'),
      ]);
      console.log(
        `time limits, sent while the slow count ran: /health ${live.status}, a device ${one.status}, an account count ${accounts.status}, /health/ready ${ready.status}`,
      );
      expect(live.status).toBe(200);
      if (engine === 'mongo-java-server') {
        for (const res of [one, accounts, ready]) {
          if (res.status !== 200) expect(res.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
        }
      } else {
        expect({ one: one.status, myId: one.body.myId, accounts: accounts.body, ready: ready.status }).toEqual({
          one: 200,
          myId: expect.stringMatching(/^slow-7-/),
          accounts: { count: 0 },
          ready: 200,
        });
      }
      const answer = await slow;
      expect(answer.status).toBe(503);
      // FerretDB stopped the query at its maxTimeMS; mongo-java-server ignores it, and the
      // socket timeout ended the wait instead.
      expect(answer.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message:
          engine === 'mongo-java-server'
            ? 'The database is unavailable; try again shortly'
            : 'The database did not answer in time; try again shortly',
      });
    } finally {
      recorder.stop();
    }
  }, 60_000);

  if (engine === 'ferretdb') {
    it('leaves no PostgreSQL backend running the count after the 503 (FerretDB)', async () => {
      const postgres = await postgresUrlOf(process.env.MONGODB_URI!);
      // The probe sees such a count: without a time limit it runs on in a backend.
      const controlFrom = now(postgres);
      const unlimited = db.collection('devices').countDocuments(slowFilter);
      expect(
        await eventually(() => runningBetween(postgres, controlFrom, now(postgres)).length > 0, { timeoutMs: 5_000, everyMs: 50 }),
      ).toBe(true);
      expect(await unlimited).toBe(0);

      const from = now(postgres);
      await request(t.http).get(slowCount).expect(503);
      const to = now(postgres);
      const atAnswer = runningBetween(postgres, from, to).length;
      let left: string[][] = [];
      await eventually(() => (left = runningBetween(postgres, from, to)).length === 0, { timeoutMs: 3_000 });
      console.log(`time limits on FerretDB: ${atAnswer} backends still running the count at the 503, ${left.length} a moment later`);
      expect(left).toEqual([]);
    }, 60_000);
  }
});
