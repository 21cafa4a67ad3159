import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Db, MongoClient, ObjectId } from 'mongodb';
import { freePort, runService, type ServiceProcess, stopService, waitUntilReady } from './support/processes.js';

/**
 * DESIGN.md Invariant 1 when the process dies: the service (dist/main.js, on the test's
 * database) is killed with SIGKILL while it deletes devices, several times, and started again.
 * A deletion is mark, pull, remove (src/relations/references-many.ts); whatever step a kill
 * interrupts, the next start finishes it before the service listens, so no account keeps the
 * id of a device that is gone or being deleted, and no device is left half deleted.
 */

const ROUNDS = 4;
const DEVICES = 240;
const ACCOUNTS = 80;
/** Each device is referenced by this many accounts (DEVICES × SHARED / ACCOUNTS = 12 ids per account). */
const SHARED = 4;
const CONCURRENCY = 8;
/** Deletions acknowledged in a round before the kill, so that it lands while others are in flight. */
const ACKNOWLEDGED_BEFORE_KILL = 20;
/** Every this many requests, one is an account's delete-all instead of a single device. */
const DELETE_ALL_EVERY = 15;
const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

interface Device {
  _id: ObjectId;
  myId: string;
  deviceUID: string;
}

interface Round {
  round: number;
  acknowledged: number;
  inFlightAtKill: number;
  /** Devices marked when the process died: deletions it began and had not finished. */
  markedAtKill: number;
  /** Ids still in accounts that named a marked device: deletions killed between mark and pull. */
  referencesToMarkedAtKill: number;
  /** What the next start-up said it finished. */
  finishedAtStart: number;
}

/** The ids each account references, as seeded: device j is in accounts j, j+20, j+40 and j+60 (mod 80), in device order. */
function seededLists(devices: Device[]): ObjectId[][] {
  const lists: ObjectId[][] = Array.from({ length: ACCOUNTS }, () => []);
  devices.forEach((device, j) => {
    for (let k = 0; k < SHARED; k += 1) lists[(j + (k * ACCOUNTS) / SHARED) % ACCOUNTS].push(device._id);
  });
  for (const list of lists) list.sort((a, b) => a.toHexString().localeCompare(b.toHexString()));
  return lists;
}

async function start(): Promise<ServiceProcess> {
  const service = runService({ MONGODB_URI: process.env.MONGODB_URI, RATE_LIMIT_MAX: '0', LOG_LEVEL: 'info' }, await freePort());
  await waitUntilReady(service, 90_000);
  return service;
}

/**
 * The count the start-up's sweep logged ("Finished n unfinished Device deletions"); it logs
 * nothing when there were none. Log lines are written in batches, so the line may come a little
 * after the service is ready.
 */
async function finishedAtStart(service: ServiceProcess, expected: number): Promise<number> {
  if (expected === 0) return service.lines.some((text) => /unfinished Device deletion/.test(text)) ? -1 : 0;
  const line = await service.waitForLine(/Finished \d+ unfinished Device deletion/, 15_000);
  return Number(/Finished (\d+)/.exec(line)![1]);
}

describe('A crash mid-delete leaves no dangling id', () => {
  let client: MongoClient;
  let db: Db;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    client = await MongoClient.connect(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 });
    db = client.db();
  });
  afterAll(async () => {
    if (service) await stopService(service);
    await client.close();
  });

  /** Ids in accounts that name no live device (gone, or marked for deletion). */
  async function danglingReferences(): Promise<number> {
    const live = new Set(
      (
        await db
          .collection('devices')
          .find({ deletingSince: { $exists: false } }, { projection: { _id: 1 } })
          .toArray()
      ).map((device) => device._id.toHexString()),
    );
    const accounts = await db
      .collection<{ deviceIds: ObjectId[] }>('accounts')
      .find({}, { projection: { deviceIds: 1 } })
      .toArray();
    return accounts.flatMap((account) => account.deviceIds).filter((id) => !live.has(id.toHexString())).length;
  }

  it(`finishes every deletion a kill -9 interrupted, over ${ROUNDS} rounds of concurrent DELETEs`, async () => {
    await Promise.all([db.collection('devices').deleteMany({}), db.collection('accounts').deleteMany({})]);
    const now = new Date();
    const devices: Device[] = Array.from({ length: DEVICES }, (_, j) => ({
      _id: new ObjectId(),
      myId: `crash-${j}`,
      deviceUID: `UID-crash-${j}`,
    }));
    await db.collection('devices').insertMany(devices.map((device) => ({ ...device, rev: 0, createdAt: now, updatedAt: now })));
    const lists = seededLists(devices);
    const accountIds = lists.map(() => new ObjectId());
    await db
      .collection('accounts')
      .insertMany(
        lists.map((deviceIds, i) => ({ _id: accountIds[i], name: `crash-${i}`, deviceIds, rev: 0, createdAt: now, updatedAt: now })),
      );

    // Requests in a fixed shuffled order, each sent once across the rounds.
    const order = devices.map((_, j) => (j * 7) % DEVICES);
    let nextDevice = 0;
    let nextAccount = 0;
    const acknowledged = new Set<string>();
    const statuses = new Map<number, number>();
    const unexpected: string[] = [];
    const rounds: Round[] = [];

    service = await start();
    for (let round = 1; round <= ROUNDS; round += 1) {
      const running = service;
      let acks = 0;
      let inFlight = 0;
      let inFlightAtKill = -1;
      const kill = () => {
        inFlightAtKill = inFlight;
        running.child.kill('SIGKILL');
      };
      const send = async (n: number): Promise<boolean> => {
        const deleteAll = n % DELETE_ALL_EVERY === DELETE_ALL_EVERY - 1 && nextAccount < ACCOUNTS;
        const path = deleteAll
          ? `/api/accounts/${accountIds[nextAccount++].toHexString()}/devices`
          : (() => {
              const device = devices[order[nextDevice++]];
              // Half by ObjectId, half by myId: both paths of DELETE /api/devices/:id.
              return `/api/devices/${n % 2 === 0 ? device._id.toHexString() : device.myId}`;
            })();
        inFlight += 1;
        let response: Response;
        try {
          response = await fetch(`${running.url}${path}`, { method: 'DELETE' });
        } catch (error) {
          if (inFlightAtKill < 0) throw error;
          return false; // the connection died with the process: not acknowledged
        } finally {
          inFlight -= 1;
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const body = (await response.json()) as { count?: number };
        if (response.status === 200) {
          acks += 1;
          if (!deleteAll) acknowledged.add(path.slice('/api/devices/'.length));
        }
        // Answered: deleted, already gone (another path deleted it), or the database busy; never a 500.
        if (![200, 404, 503].includes(response.status) || (response.status === 200) !== (typeof body.count === 'number'))
          unexpected.push(`${path}: ${response.status} ${JSON.stringify(body)}`);
        return true;
      };
      let sent = 0;
      const loop = async () => {
        while (nextDevice < DEVICES && (await send(sent++))) {
          if (inFlightAtKill < 0 && acks >= ACKNOWLEDGED_BEFORE_KILL) kill();
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, loop));
      if (inFlightAtKill < 0) kill();
      await running.exited;

      const markedAtKill = await db.collection('devices').countDocuments({ deletingSince: { $exists: true } });
      const referencesToMarkedAtKill = await danglingReferences();
      service = await start();
      // The start-up sweep ran before the service listened: nothing is left half done.
      expect({ round, marked: await db.collection('devices').countDocuments({ deletingSince: { $exists: true } }) }).toEqual({
        round,
        marked: 0,
      });
      expect({ round, dangling: await danglingReferences() }).toEqual({ round, dangling: 0 });
      rounds.push({
        round,
        acknowledged: acks,
        inFlightAtKill,
        markedAtKill,
        referencesToMarkedAtKill,
        finishedAtStart: await finishedAtStart(service, markedAtKill),
      });
    }

    console.log(
      [
        `crash mid-delete, ${DEVICES} devices in ${ACCOUNTS} accounts (${SHARED} accounts each), ${CONCURRENCY} concurrent DELETEs, kill -9 per round:`,
        ...rounds.map(
          (r) =>
            `  round ${r.round}: ${r.acknowledged} deletions acknowledged, ${r.inFlightAtKill} requests in flight at the kill, ` +
            `${r.markedAtKill} devices left marked (${r.referencesToMarkedAtKill} ids of them still in accounts), ${r.finishedAtStart} finished by the next start-up`,
        ),
        `  statuses: ${[...statuses].map(([status, count]) => `${count} × ${status}`).join(', ')}`,
      ].join('\n'),
    );
    expect(unexpected).toEqual([]);
    for (const r of rounds) {
      expect(r.inFlightAtKill).toBeGreaterThan(0);
      // The start-up finished exactly the deletions the kill left.
      expect(r.finishedAtStart).toBe(r.markedAtKill);
    }
    // The kills did interrupt deletions: otherwise this test would prove nothing.
    expect(rounds.reduce((sum, r) => sum + r.markedAtKill, 0)).toBeGreaterThan(0);

    // Every device is fully there (its own myId and deviceUID, unmarked) or gone everywhere.
    const stored = new Map(
      (
        await db
          .collection<Device & { deletingSince?: Date }>('devices')
          .find({}, { projection: { myId: 1, deviceUID: 1, deletingSince: 1 } })
          .toArray()
      ).map((device) => [device._id.toHexString(), device]),
    );
    const survivors = devices.filter((device) => stored.has(device._id.toHexString()));
    const gone = devices.filter((device) => !stored.has(device._id.toHexString()));
    expect(survivors.map((device) => stored.get(device._id.toHexString()))).toEqual(survivors.map((device) => ({ ...device })));
    expect(gone.length).toBeGreaterThanOrEqual(acknowledged.size);
    // An acknowledged deletion is never undone.
    expect(
      devices
        .filter((device) => acknowledged.has(device._id.toHexString()) || acknowledged.has(device.myId))
        .filter((device) => stored.has(device._id.toHexString())),
    ).toEqual([]);
    // Each account holds exactly its seeded ids of the devices that survived, in the seeded order.
    const alive = new Set(survivors.map((device) => device._id.toHexString()));
    const accounts = await db
      .collection<{ _id: ObjectId; deviceIds: ObjectId[] }>('accounts')
      .find({}, { projection: { deviceIds: 1 } })
      .toArray();
    expect(accounts).toHaveLength(ACCOUNTS);
    const byId = new Map(accounts.map((account) => [account._id.toHexString(), account.deviceIds.map((id) => id.toHexString())]));
    expect(accountIds.map((id) => byId.get(id.toHexString()))).toEqual(
      lists.map((list) => list.map((id) => id.toHexString()).filter((id) => alive.has(id))),
    );

    // Through the API: the deleted devices are 404, the others there.
    const answers = await Promise.all(
      devices.map((device) => fetch(`${service!.url}/api/devices/${device._id.toHexString()}`).then((res) => res.status)),
    );
    expect(answers).toEqual(devices.map((device) => (alive.has(device._id.toHexString()) ? 200 : 404)));
    await stopService(service);
    service = undefined;

    // `npm run integrity` finds nothing to repair.
    const integrity = spawnSync(process.execPath, [join(ROOT, 'dist', 'integrity', 'main.js'), '--json'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MONGODB_URI: process.env.MONGODB_URI, LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    expect(integrity.status).toBe(0);
    const report = JSON.parse(integrity.stdout) as { accountsScanned: number; devicesScanned: number; damaged: unknown[] };
    expect(report).toMatchObject({ accountsScanned: ACCOUNTS, devicesScanned: survivors.length, damaged: [] });
    console.log(
      `after the last restart: ${gone.length} devices gone (${acknowledged.size} of them acknowledged), ${survivors.length} intact, 0 dangling ids; integrity: no damage`,
    );
  }, 300_000);
});
