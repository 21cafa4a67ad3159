/**
 * The load benchmark's data: accounts holding 0–50 devices (a few holding 10,000), devices
 * referenced by 0–100 accounts, and the ids each workload needs. Generated once, from a fixed
 * seed, and loaded identically into one database per server, so every server meets the same
 * data and a workload that changes data changes only its own copy.
 */
import { type Db, MongoClient, ObjectId } from 'mongodb';

/**
 * Accounts and devices; `bigAccounts` hold `bigAccountDevices` each (W2); `deletePool` devices
 * (W4, deleted) and `reversePool` devices (W5) are referenced by exactly 100 accounts each;
 * `churnPairs` are (account, device) pairs not linked yet (W3). The quick size keeps more
 * devices than a 10,000-device account needs besides the pools, so W2 still has its big accounts.
 */
export const SIZES = {
  full: {
    name: 'full',
    accounts: 100_000,
    devices: 200_000,
    bigAccounts: 10,
    bigAccountDevices: 10_000,
    deletePool: 5_000,
    reversePool: 200,
    churnPairs: 20_000,
  },
  quick: {
    name: 'quick',
    accounts: 5_000,
    devices: 15_000,
    bigAccounts: 3,
    bigAccountDevices: 10_000,
    deletePool: 400,
    reversePool: 50,
    churnPairs: 5_000,
  },
};
export type Size = (typeof SIZES)['full'];

export const MAX_DEVICES = 50;
export const MAX_REFERENCES = 100;

export interface Targets {
  /** Accounts holding exactly 50 devices (W1). */
  fiftyDeviceAccounts: string[];
  /** Accounts holding 10,000 devices (W2). */
  bigAccounts: string[];
  churnPairs: Array<[account: string, device: string]>;
  /** Devices referenced by exactly 100 accounts: W5 reads them, W4 deletes them. */
  reverseDevices: string[];
  deleteDevices: string[];
}

/** A small seeded generator (mulberry32): the same data on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generate(size: Size, seed = 20240601) {
  const random = seededRandom(seed);
  const below = (n: number) => Math.floor(random() * n);
  const now = new Date();

  // Device indices: [0, deletePool) are W4's, then W5's, then the general population.
  const firstReverse = size.deletePool;
  const firstGeneral = size.deletePool + size.reversePool;
  const general = size.devices - firstGeneral;
  if (general < size.bigAccountDevices) throw new Error(`${size.name}: too few devices for a ${size.bigAccountDevices}-device account`);
  const references = new Uint8Array(size.devices);

  // Account indices: [0, bigAccounts) hold 10,000 devices, the rest 0–50 (uniform).
  const lists: number[][] = Array.from({ length: size.accounts }, () => []);
  const room = new Int32Array(size.accounts);
  for (let a = size.bigAccounts; a < size.accounts; a += 1) room[a] = below(MAX_DEVICES + 1);

  // The pools' references take part of the general accounts' room, so the 0–50 shape holds.
  const generalAccounts = size.accounts - size.bigAccounts;
  for (let d = 0; d < firstGeneral; d += 1) {
    const chosen = new Set<number>();
    for (let attempts = 0; chosen.size < MAX_REFERENCES; attempts += 1) {
      if (attempts > 1_000_000) throw new Error(`${size.name}: the accounts have no room left for the W4/W5 pools`);
      const a = size.bigAccounts + below(generalAccounts);
      if (room[a] === 0 || chosen.has(a)) continue;
      chosen.add(a);
      lists[a].push(d);
      room[a] -= 1;
    }
    references[d] = MAX_REFERENCES;
  }

  for (let a = 0; a < size.bigAccounts; a += 1) {
    const order = Int32Array.from({ length: general }, (_, i) => firstGeneral + i);
    for (let i = 0; lists[a].length < size.bigAccountDevices; i += 1) {
      if (i === general) throw new Error(`${size.name}: too few devices under 100 references for a big account`);
      const j = i + below(general - i);
      [order[i], order[j]] = [order[j], order[i]];
      if (references[order[i]] >= MAX_REFERENCES) continue;
      lists[a].push(order[i]);
      references[order[i]] += 1;
    }
  }

  // The rest of each account's room: a skewed popularity (a few devices in many accounts,
  // most in a few), capped at 100 accounts per device.
  for (let a = size.bigAccounts; a < size.accounts; a += 1) {
    const list = lists[a];
    while (room[a] > 0) {
      const d = firstGeneral + Math.floor(general * random() ** 2);
      if (references[d] >= MAX_REFERENCES || list.includes(d)) continue;
      list.push(d);
      references[d] += 1;
      room[a] -= 1;
    }
    for (let i = list.length - 1; i > 0; i -= 1) {
      const j = below(i + 1);
      [list[i], list[j]] = [list[j], list[i]];
    }
  }

  const deviceIds = Array.from({ length: size.devices }, () => new ObjectId());
  const accountIds = Array.from({ length: size.accounts }, () => new ObjectId());
  const devices = deviceIds.map((_id, i) => ({
    _id,
    myId: `bench-device-${i}`,
    deviceUID: `BENCH-UID-${i}`,
    createdAt: now,
    updatedAt: now,
  }));
  const accounts = accountIds.map((_id, a) => ({
    _id,
    name: a < size.bigAccounts ? `bench-big-${a}` : `bench-account-${a}`,
    deviceIds: lists[a].map((d) => deviceIds[d]),
    createdAt: now,
    updatedAt: now,
  }));

  // W3 links a device an account does not hold yet, and unlinks it again: the account stays
  // within 50 and the device within 100 even with every connection holding a pair linked.
  const churnPairs: Array<[string, string]> = [];
  const seen = new Set<string>();
  while (churnPairs.length < size.churnPairs) {
    const a = size.bigAccounts + below(generalAccounts);
    const d = firstGeneral + below(general);
    if (lists[a].length >= MAX_DEVICES || references[d] >= MAX_REFERENCES - 10 || lists[a].includes(d) || seen.has(`${a}:${d}`)) continue;
    seen.add(`${a}:${d}`);
    churnPairs.push([accountIds[a].toHexString(), deviceIds[d].toHexString()]);
  }

  return {
    devices,
    accounts,
    targets: {
      fiftyDeviceAccounts: accounts
        .filter((account, a) => a >= size.bigAccounts && account.deviceIds.length === MAX_DEVICES)
        .map((account) => account._id.toHexString()),
      bigAccounts: accountIds.slice(0, size.bigAccounts).map((id) => id.toHexString()),
      churnPairs,
      reverseDevices: deviceIds.slice(firstReverse, firstGeneral).map((id) => id.toHexString()),
      deleteDevices: deviceIds.slice(0, firstReverse).map((id) => id.toHexString()),
    },
  };
}

const BATCH = 1_000;
const BATCHES_IN_FLIGHT = 4;

async function insertAll(db: Db, collection: string, documents: readonly object[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < documents.length) {
      const batch = documents.slice(next, next + BATCH);
      next += BATCH;
      await db.collection(collection).insertMany(batch as Array<Record<string, unknown>>, { ordered: false });
    }
  };
  await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, worker));
}

/**
 * Loads the dataset into the database of `uri` with the driver's bulk inserts, after dropping what
 * was there and creating the service's indexes (the unique ones must exist before the data).
 */
export async function seed(uri: string, dataset: ReturnType<typeof generate>): Promise<void> {
  const client = await new MongoClient(uri, { directConnection: true }).connect();
  try {
    const db = client.db();
    await db.dropDatabase();
    await db.collection('devices').createIndex({ myId: 1 }, { unique: true, name: 'myId_1' });
    await db.collection('devices').createIndex({ deviceUID: 1 }, { unique: true, name: 'deviceUID_1' });
    await db.collection('accounts').createIndex({ deviceIds: 1 }, { name: 'deviceIds_1' });
    await insertAll(db, 'devices', dataset.devices);
    await insertAll(db, 'accounts', dataset.accounts);
  } finally {
    await client.close();
  }
}
