/**
 * The relation at scale: each operation on one account holding n references, timed once per
 * size (reads: the median of three) through the service's HTTP API, and the integrity scan as
 * `npm run integrity` runs it (the whole command, start-up included). A row is linear when its time per reference does not grow from
 * one size to the next.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient, ObjectId } from 'mongodb';
import { projectRoot } from '../../src/database/project-root.js';
import { type Engine, uriFor } from './engines.js';
import { startServer } from './processes.js';

export const OPERATIONS = [
  'link-many, all at once',
  'link-many, batches of 500',
  'count',
  'page at the end',
  'include with a scope',
  'replace',
  'integrity scan',
  'delete-all',
] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Seconds per operation and size; null when it failed (its status is in `failures`). */
export interface SizesResult {
  sizes: number[];
  seconds: Record<Operation, Array<number | null>>;
  failures: string[];
  integrityStartUpSeconds?: number;
}

const BATCH = 500;
const DATABASE = 'bench_sizes';

async function timed(label: string, request: () => Promise<Response>, failures: string[], rounds = 1): Promise<number | null> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const started = performance.now();
    const response = await request();
    await response.arrayBuffer();
    if (!response.ok) return (failures.push(`${label}: ${response.status}`), null);
    times.push((performance.now() - started) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

const integrity = (uri: string) => {
  const started = performance.now();
  return promisify(execFile)(process.execPath, [join(projectRoot(), 'dist', 'integrity', 'main.js')], {
    env: { ...process.env, MONGODB_URI: uri },
  }).then(() => (performance.now() - started) / 1000);
};

export async function measureSizes(engine: Engine, sizes: number[], log: (message: string) => void): Promise<SizesResult> {
  const uri = uriFor(engine, DATABASE);
  const client = await new MongoClient(uri, { directConnection: true }).connect();
  await client.db().dropDatabase();
  // The slowest operations must be timed, not cut off by the service's request timeout.
  const server = await startServer('ours', uri, { REQUEST_TIMEOUT_MS: '600000' });
  const result: SizesResult = { sizes, seconds: Object.fromEntries(OPERATIONS.map((op) => [op, []])) as never, failures: [] };
  try {
    // The integrity command's time is mostly its own start-up: measured on an empty database too.
    result.integrityStartUpSeconds = await integrity(uri);
    const api = (path: string, method = 'GET', body?: unknown) =>
      fetch(`${server.url}/api${path}`, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    for (const n of sizes) {
      log(`sizes: ${n.toLocaleString('en-US')} references…`);
      const db = client.db();
      // Emptied, not dropped: the service made its indexes when it started.
      await Promise.all(['accounts', 'devices'].map((name) => db.collection(name).deleteMany({})));
      const now = new Date();
      const ids = Array.from({ length: 2 * n }, () => new ObjectId());
      for (let i = 0; i < ids.length; i += 1000)
        await db
          .collection('devices')
          .insertMany(
            ids
              .slice(i, i + 1000)
              .map((_id, j) => ({ _id, myId: `size-${i + j}`, deviceUID: `SIZE-${i + j}`, createdAt: now, updatedAt: now })),
          );
      const [first, second] = [ids.slice(0, n).map(String), ids.slice(n).map(String)];
      const account = async (name: string) => ((await (await api('/accounts', 'POST', { name })).json()) as { _id: string })._id;
      const [a, b] = [await account('one'), await account('batched')];
      const time = (op: Operation, request: () => Promise<Response>, rounds = 1) =>
        timed(`${op} at ${n}`, request, result.failures, rounds).then((seconds) => result.seconds[op].push(seconds));
      const filter = (value: unknown) => encodeURIComponent(JSON.stringify(value));

      await time('link-many, all at once', () => api(`/accounts/${a}/devices/rel`, 'POST', { ids: first }));
      let batches = 0;
      for (let i = 0; i < n; i += BATCH) {
        const seconds = await timed(
          `link-many batch at ${n}`,
          () => api(`/accounts/${b}/devices/rel`, 'POST', { ids: first.slice(i, i + BATCH) }),
          result.failures,
        );
        batches = seconds === null || batches < 0 ? -1 : batches + seconds;
      }
      result.seconds['link-many, batches of 500'].push(batches < 0 ? null : batches);
      await time('count', () => api(`/accounts/${a}/devices/count`), 3);
      await time('page at the end', () => api(`/accounts/${a}/devices?filter=${filter({ limit: 20, skip: n - 20 })}`), 3);
      const scope = { where: { myId: { like: '7$' } }, fields: { myId: true, deviceUID: true } };
      await time('include with a scope', () => api(`/accounts/${a}?filter=${filter({ include: { relation: 'devices', scope } })}`), 3);
      await time('replace', () => api(`/accounts/${a}/devices/rel`, 'PUT', { ids: second }));
      result.seconds['integrity scan'].push(
        await integrity(uri).then(
          (seconds) => seconds,
          (error: unknown) => (result.failures.push(`integrity at ${n}: ${String(error).split('\n')[0]}`), null),
        ),
      );
      await time('delete-all', () => api(`/accounts/${a}/devices`, 'DELETE'));
    }
  } finally {
    await server.stop();
    await client.db().dropDatabase();
    await client.close();
  }
  return result;
}

/** Time per reference at each size over that at the size before: about 1 (or below) when linear. */
export function growth(seconds: Array<number | null>, sizes: number[]): number[] {
  return sizes.slice(1).map((n, i) => {
    const [before, after] = [seconds[i], seconds[i + 1]];
    return before === null || after === null ? NaN : after / n / (before / sizes[i]);
  });
}
