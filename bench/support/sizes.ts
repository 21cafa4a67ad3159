/**
 * The relation at scale: each operation on one account holding n references, timed once per
 * size (reads: the median of five) through the service's HTTP API, and the integrity scan of
 * `npm run integrity`. A row is linear when its time per reference does not grow from one size
 * to the next.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient, ObjectId } from 'mongodb';
import { projectRoot } from '../../src/database/project-root.js';
import { type Engine, uriFor } from './engines.js';
import { HOOK, startServer } from './processes.js';

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
  /** `npm run integrity` as a whole, start-up included, at each size. */
  integrityWholeSeconds: number[];
}

const BATCH = 500;
const DATABASE = 'bench_sizes';
/** An untimed pass first, so that the first size does not pay for the service's cold code paths. */
const WARM_UP = 100;
const READ_ROUNDS = 5;

async function timed(request: () => Promise<Response>, rounds = 1): Promise<number> {
  const times: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const started = performance.now();
    const response = await request();
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    times.push((performance.now() - started) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/**
 * `npm run integrity`'s scan: from its first database command to its last reply, as the
 * command-counting hook reports it on exit; the whole command's time, start-up included, beside.
 */
async function integrity(uri: string): Promise<{ scan: number; whole: number }> {
  const started = performance.now();
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', HOOK, join(projectRoot(), 'dist', 'integrity', 'main.js')], {
    cwd: projectRoot(),
    env: { ...process.env, MONGODB_URI: uri, BENCH_COMMAND_SPAN: '1' },
  });
  const span = /database commands took ([\d.]+) ms/.exec(stderr);
  if (!span) throw new Error('the integrity command reported no database commands');
  return { scan: Number(span[1]) / 1000, whole: (performance.now() - started) / 1000 };
}

export async function measureSizes(engine: Engine, sizes: number[], log: (message: string) => void): Promise<SizesResult> {
  const uri = uriFor(engine, DATABASE);
  const client = await new MongoClient(uri, { directConnection: true }).connect();
  const db = client.db();
  await db.dropDatabase();
  // The slowest operations must be timed, not cut off by the service's request timeout.
  const server = await startServer('ours', uri, { REQUEST_TIMEOUT_MS: '600000' });
  const result: SizesResult = {
    sizes,
    seconds: Object.fromEntries(OPERATIONS.map((op) => [op, []])) as never,
    failures: [],
    integrityWholeSeconds: [],
  };
  const api = (path: string, method = 'GET', body?: unknown) =>
    fetch(`${server.url}/api${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const filter = (value: unknown) => encodeURIComponent(JSON.stringify(value));
  try {
    for (const n of [WARM_UP, ...sizes]) {
      log(`sizes: ${n.toLocaleString('en-US')} references${n === WARM_UP ? ' (warm-up)' : ''}…`);
      // Emptied, not dropped: the service made its indexes when it started.
      await Promise.all(['accounts', 'devices'].map((name) => db.collection(name).deleteMany({})));
      const now = new Date();
      const ids = Array.from({ length: 2 * n }, () => new ObjectId());
      for (let i = 0; i < ids.length; i += 1000) {
        const devices = ids
          .slice(i, i + 1000)
          .map((_id, j) => ({ _id, myId: `size-${i + j}`, deviceUID: `SIZE-${i + j}`, createdAt: now, updatedAt: now }));
        await db.collection('devices').insertMany(devices);
      }
      const [first, second] = [ids.slice(0, n).map(String), ids.slice(n).map(String)];
      const account = async (name: string) => ((await (await api('/accounts', 'POST', { name })).json()) as { _id: string })._id;
      const [a, b] = [await account('one'), await account('batched')];
      const scope = { where: { myId: { like: '7$' } }, fields: { myId: true, deviceUID: true } };
      const steps: Record<Operation, () => Promise<number>> = {
        'link-many, all at once': () => timed(() => api(`/accounts/${a}/devices/rel`, 'POST', { ids: first })),
        'link-many, batches of 500': async () => {
          let seconds = 0;
          for (let i = 0; i < n; i += BATCH)
            seconds += await timed(() => api(`/accounts/${b}/devices/rel`, 'POST', { ids: first.slice(i, i + BATCH) }));
          return seconds;
        },
        count: () => timed(() => api(`/accounts/${a}/devices/count`), READ_ROUNDS),
        'page at the end': () => timed(() => api(`/accounts/${a}/devices?filter=${filter({ limit: 20, skip: n - 20 })}`), READ_ROUNDS),
        'include with a scope': () =>
          timed(() => api(`/accounts/${a}?filter=${filter({ include: { relation: 'devices', scope } })}`), READ_ROUNDS),
        replace: () => timed(() => api(`/accounts/${a}/devices/rel`, 'PUT', { ids: second })),
        'integrity scan': async () => {
          const { scan, whole } = await integrity(uri);
          if (n !== WARM_UP) result.integrityWholeSeconds.push(whole);
          return scan;
        },
        'delete-all': () => timed(() => api(`/accounts/${a}/devices`, 'DELETE')),
      };
      for (const operation of OPERATIONS) {
        const seconds = await steps[operation]().catch(
          (error: unknown) => (result.failures.push(`${operation} at ${n}: ${String(error)}`), null),
        );
        if (n !== WARM_UP) result.seconds[operation].push(seconds);
      }
    }
  } finally {
    await server.stop();
    await db.dropDatabase();
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
