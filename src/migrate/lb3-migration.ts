import mongoose, { type Model, mongo, type Types } from 'mongoose';
import { Account, AccountSchema } from '../accounts/schemas/account.schema.js';
import { Device, DeviceSchema } from '../devices/schemas/device.schema.js';
import { ACCOUNT_DEVICES } from '../accounts/account-devices.relation.js';
import { type AccountDto } from '../accounts/dto/account.dto.js';
import { type IntegrityReport, IntegrityService } from '../integrity/integrity.service.js';
import { ReferencesMany } from '../relations/references-many.js';
import { REVISION } from '../common/schema/revision.plugin.js';
import {
  type AccountOutcome,
  type ConversionRules,
  type ConvertedAccount,
  type ConvertedDevice,
  convertAccount,
  countExtraFields,
  isObjectId,
  type DeviceNotes,
  planDevices,
  type SourceDocument,
} from './lb3-conversion.js';
import { type Progress, silentProgress } from './progress.js';

export interface MigrationSettings {
  /** LoopBack's database, a URI that names it. */
  from: string;
  fromDevices: string;
  fromAccounts: string;
  /** Our database, as the service would open it. */
  to: string;
  apply: boolean;
  rules: ConversionRules;
  /** Documents per read and per bulk write. */
  batchSize?: number;
  /** Bulk writes in flight at once. */
  concurrency?: number;
  progress?: Progress;
}

export interface WriteCounts {
  insert: number;
  update: number;
  unchanged: number;
  failed: number;
}

export interface MigrationReport {
  mode: 'dry-run' | 'apply';
  source: { database: string; devices: string; accounts: string };
  limit: number;
  devices: DeviceNotes & { converted: number; keptIds: number; writes: WriteCounts };
  accounts: {
    read: number;
    converted: number;
    refused: Array<{ account: string; reason: string; leftInTarget: boolean }>;
    /** Accounts converted with something to say: a new id, a name, dropped or repeated references. */
    changed: Array<Omit<AccountOutcome, 'id' | 'converted' | 'refused' | 'extraFields' | 'references'>>;
    references: { read: number; kept: number; rewritten: number; dropped: number; duplicates: number };
    fieldsNotCarried: Record<string, number>;
    writes: WriteCounts;
  };
  /** Documents in the target that the source does not hold; never touched. */
  targetOnly: { devices: number; accounts: number };
  writeErrors: Array<{ collection: string; id: string; message: string }>;
  /** The integrity scan of the whole target after `--apply`. */
  integrity?: Pick<IntegrityReport, 'accountsScanned' | 'devicesScanned' | 'damaged'>;
  /** Whether a run finds (or found) nothing to write. */
  upToDate: boolean;
  timings: {
    devicesMs: number;
    accountsMs: number;
    integrityMs: number;
    accountsPerSecond: number;
    /** CPU time of the whole process (user + system), which a busy machine does not inflate. */
    cpuMs: number;
  };
}

type DeviceDocument = Required<ConvertedDevice>;
type AccountDocument = Required<ConvertedAccount>;

const DEFAULT_BATCH = 1000;
const DEFAULT_CONCURRENCY = 4;
const DUPLICATE_KEY = 11000;
const SERVER_SELECTION_TIMEOUT_MS = 10_000;

/**
 * Reads LoopBack's two collections and writes ours: every device first (so no account ever
 * references a device that is not there yet), then the accounts in batches. Each document is
 * compared with what the target already holds and written only when it differs, with
 * unordered bulk writes keyed by `_id`, so a second `--apply` writes nothing. Without `apply`
 * the same plan is made and reported, and nothing is written.
 */
export async function migrateLb3(settings: MigrationSettings): Promise<MigrationReport> {
  const progress = settings.progress ?? silentProgress;
  const batchSize = settings.batchSize ?? DEFAULT_BATCH;
  const now = new Date();
  const source = new mongo.MongoClient(settings.from, { serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS });
  // Nothing is created on a dry run: no collection, no index, until there is something to write.
  const target = mongoose.createConnection(settings.to, {
    autoIndex: false,
    autoCreate: false,
    serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
  });
  try {
    await Promise.all([source.connect(), target.asPromise()]);
    const sourceDb = source.db();
    await assertCollections(sourceDb, [settings.fromDevices, settings.fromAccounts]);
    const deviceModel = target.model<Device>(Device.name, DeviceSchema);
    const accountModel = target.model<Account>(Account.name, AccountSchema);
    const writer = new Writer(settings.apply, deviceModel, accountModel);
    const timings: MigrationReport['timings'] = { devicesMs: 0, accountsMs: 0, integrityMs: 0, accountsPerSecond: 0, cpuMs: 0 };

    let started = performance.now();
    const sourceDevices = sourceDb.collection<SourceDocument>(settings.fromDevices);
    const deviceTotal = await sourceDevices.estimatedDocumentCount();
    const read: SourceDocument[] = [];
    for await (const device of sourceDevices.find({}, { sort: { _id: 1 }, batchSize })) {
      read.push(device);
      progress.update('Reading devices', read.length, deviceTotal);
    }
    const plan = planDevices(read, settings.rules);
    const deviceWrites = emptyCounts();
    const planned = plan.devices;
    const pool = new TaskPool(settings.concurrency ?? DEFAULT_CONCURRENCY);
    let devicesDone = 0;
    for (let start = 0; start < planned.length; start += batchSize) {
      const batch = planned.slice(start, start + batchSize);
      await pool.add(async () => {
        const { accepted, existing } = await existingDevices(deviceModel, batch, (device, reason) => plan.refuse(device._id, reason));
        const documents = accepted.map((device) => deviceDocument(device, existing.get(device._id.toHexString()), now));
        await writer.write('devices', documents, existing, deviceWrites, (id, message) => plan.refuse(id, `its write failed: ${message}`));
        devicesDone += batch.length;
        progress.update(settings.apply ? 'Writing devices' : 'Checking devices', devicesDone, planned.length);
      });
    }
    // Every device is in place (or known to be refused) before any account is resolved.
    await pool.drain();
    const devices: MigrationReport['devices'] = {
      ...plan.notes,
      converted: plan.devices.length,
      keptIds: plan.keptIds,
      writes: deviceWrites,
    };
    timings.devicesMs = performance.now() - started;

    started = performance.now();
    const sourceAccounts = sourceDb.collection<SourceDocument>(settings.fromAccounts);
    const accountTotal = await sourceAccounts.estimatedDocumentCount();
    const accounts: MigrationReport['accounts'] = {
      read: 0,
      converted: 0,
      refused: [],
      changed: [],
      references: { read: 0, kept: 0, rewritten: 0, dropped: 0, duplicates: 0 },
      fieldsNotCarried: {},
      writes: emptyCounts(),
    };
    const seenAccounts = new Set<string>();
    const extra = new Map<string, number>();
    let accountsDone = 0;
    let batch: SourceDocument[] = [];
    const flush = async () => {
      // Converted and recorded here, in source order, so the report reads the same on every run;
      // only the target's reads and writes run concurrently.
      const outcomes = batch.map((account): AccountOutcome => {
        countExtraFields(account, 'account', extra);
        const outcome = convertAccount(account, plan, settings.rules);
        const hex = outcome.id?.toHexString();
        if (hex && seenAccounts.has(hex)) {
          return { ...outcome, id: undefined, converted: undefined, refused: 'its _id names the same account as another one' };
        }
        if (hex) seenAccounts.add(hex);
        return outcome;
      });
      batch = [];
      const refused = outcomes.map((outcome) => record(accounts, outcome));
      await pool.add(async () => {
        const existing = await existingAccounts(
          accountModel,
          outcomes.flatMap((outcome) => (outcome.id ? [outcome.id] : [])),
        );
        outcomes.forEach((outcome, index) => {
          const entry = refused[index];
          if (entry && outcome.id) entry.leftInTarget = existing.has(outcome.id.toHexString());
        });
        const converted = outcomes.flatMap((outcome) => (outcome.converted ? [outcome.converted] : []));
        await writer.write(
          'accounts',
          converted.map((account) => accountDocument(account, existing.get(account._id.toHexString()), now)),
          existing,
          accounts.writes,
        );
        accountsDone += outcomes.length;
        progress.update(settings.apply ? 'Writing accounts' : 'Checking accounts', accountsDone, accountTotal);
      });
    };
    for await (const account of sourceAccounts.find({}, { sort: { _id: 1 }, batchSize })) {
      batch.push(account);
      if (batch.length >= batchSize) await flush();
    }
    if (batch.length > 0) await flush();
    await pool.drain();
    accounts.fieldsNotCarried = Object.fromEntries(extra);
    timings.accountsMs = performance.now() - started;
    timings.accountsPerSecond = accounts.read / ((timings.devicesMs + timings.accountsMs) / 1000);

    const present = (counts: WriteCounts) => counts.update + counts.unchanged + (settings.apply ? counts.insert : 0);
    const [targetDevices, targetAccounts] = await Promise.all([
      deviceModel.collection.countDocuments({}),
      accountModel.collection.countDocuments({}),
    ]);
    const report: MigrationReport = {
      mode: settings.apply ? 'apply' : 'dry-run',
      source: { database: sourceDb.databaseName, devices: settings.fromDevices, accounts: settings.fromAccounts },
      limit: settings.rules.maxDevicesPerAccount,
      devices,
      accounts,
      targetOnly: { devices: targetDevices - present(devices.writes), accounts: targetAccounts - present(accounts.writes) },
      writeErrors: writer.errors,
      upToDate: [devices.writes, accounts.writes].every((counts) => counts.insert + counts.update + counts.failed === 0),
      timings,
    };

    if (settings.apply) {
      started = performance.now();
      progress.update('Checking integrity');
      // `npm run integrity`'s own scan, on the relation as the service declares it.
      const relation = new ReferencesMany<AccountDto>(ACCOUNT_DEVICES, target, settings.rules.maxDevicesPerAccount);
      const { accountsScanned, devicesScanned, damaged } = await new IntegrityService(relation).check({ fix: false });
      report.integrity = { accountsScanned, devicesScanned, damaged };
      timings.integrityMs = performance.now() - started;
    }
    const cpu = process.cpuUsage();
    timings.cpuMs = (cpu.user + cpu.system) / 1000;
    return report;
  } finally {
    progress.finish();
    await Promise.allSettled([source.close(), target.close()]);
  }
}

async function assertCollections(db: mongo.Db, names: string[]): Promise<void> {
  const found = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((collection) => collection.name));
  const missing = names.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new Error(
      `LoopBack's database "${db.databaseName}" has no collection ${missing.map((name) => `"${name}"`).join(' or ')} ` +
        `(it has ${[...found].map((name) => `"${name}"`).join(', ') || 'none'}); name them with --from-devices and --from-accounts`,
    );
  }
}

/**
 * The target's devices with the batch's ids, and the refusal of any planned device whose myId or
 * deviceUID another target device already holds (the unique indexes would refuse it anyway, after
 * accounts had been written to reference it).
 */
async function existingDevices(
  model: Model<Device>,
  batch: ConvertedDevice[],
  refuse: (device: ConvertedDevice, reason: string) => void,
): Promise<{ accepted: ConvertedDevice[]; existing: Map<string, Record<string, unknown>> }> {
  // Three queries on one indexed field each, not one `$or`: mongo-java-server answers an `$or`
  // by scanning the collection, which made the conversion quadratic there.
  const collection = model.collection;
  const holders = { projection: { _id: 1, myId: 1, deviceUID: 1 } };
  const [found, byMyIdFound, byUidFound] = await Promise.all([
    collection.find({ _id: { $in: batch.map((device) => device._id) } }).toArray(),
    collection.find({ myId: { $in: batch.map((device) => device.myId) } }, holders).toArray(),
    collection.find({ deviceUID: { $in: batch.map((device) => device.deviceUID) } }, holders).toArray(),
  ]);
  const byId = new Map(found.map((document) => [(document._id as Types.ObjectId).toHexString(), document]));
  const byMyId = new Map(byMyIdFound.map((document) => [document.myId as unknown, document]));
  const byUid = new Map(byUidFound.map((document) => [document.deviceUID as unknown, document]));
  const accepted: ConvertedDevice[] = [];
  const existing = new Map<string, Record<string, unknown>>();
  for (const device of batch) {
    const hex = device._id.toHexString();
    const holder = [byMyId.get(device.myId), byUid.get(device.deviceUID)].find(
      (document) => document && !(document._id as Types.ObjectId).equals(device._id),
    );
    if (holder) {
      const field = holder.myId === device.myId ? `myId ${JSON.stringify(device.myId)}` : `deviceUID ${JSON.stringify(device.deviceUID)}`;
      refuse(device, `the target already has ${field} on device ${(holder._id as Types.ObjectId).toHexString()}`);
      continue;
    }
    accepted.push(device);
    const document = byId.get(hex);
    if (document) existing.set(hex, document);
  }
  return { accepted, existing };
}

async function existingAccounts(model: Model<Account>, ids: Types.ObjectId[]): Promise<Map<string, Record<string, unknown>>> {
  if (ids.length === 0) return new Map();
  const found = await model.collection.find({ _id: { $in: ids } }).toArray();
  return new Map(found.map((document) => [(document._id as Types.ObjectId).toHexString(), document]));
}

/** Exactly the shape the service writes: these fields in this order, no `__v`. */
function deviceDocument(device: ConvertedDevice, existing: Record<string, unknown> | undefined, now: Date): DeviceDocument {
  return { _id: device._id, myId: device.myId, deviceUID: device.deviceUID, ...timestamps(device, existing, now) };
}

function accountDocument(account: ConvertedAccount, existing: Record<string, unknown> | undefined, now: Date): AccountDocument {
  return { _id: account._id, name: account.name, deviceIds: account.deviceIds, ...timestamps(account, existing, now) };
}

/** The timestamps to write: the source's own, else those the target already has, else the run's (`updatedAt` then `createdAt`'s). */
function timestamps(
  converted: { createdAt?: Date; updatedAt?: Date },
  existing: Record<string, unknown> | undefined,
  now: Date,
): { createdAt: Date; updatedAt: Date } {
  const createdAt = converted.createdAt ?? dateIn(existing?.createdAt) ?? now;
  return { createdAt, updatedAt: converted.updatedAt ?? dateIn(existing?.updatedAt) ?? createdAt };
}

function dateIn(value: unknown): Date | undefined {
  return value instanceof Date ? value : undefined;
}

/** Adds one account's outcome to the report; a refusal's entry is returned for the caller to complete. */
function record(
  accounts: MigrationReport['accounts'],
  outcome: AccountOutcome,
): MigrationReport['accounts']['refused'][number] | undefined {
  accounts.read += 1;
  accounts.references.read += outcome.references.read;
  accounts.references.dropped += outcome.references.read - outcome.references.kept - outcome.duplicates.length;
  accounts.references.duplicates += outcome.duplicates.length;
  if (outcome.refused || !outcome.converted) {
    const entry = { account: outcome.account, reason: outcome.refused ?? 'not converted', leftInTarget: false };
    accounts.refused.push(entry);
    return entry;
  }
  accounts.converted += 1;
  accounts.references.kept += outcome.references.kept;
  accounts.references.rewritten += outcome.references.rewritten;
  if (outcome.newId || outcome.name || outcome.dropped.length > 0 || outcome.duplicates.length > 0) {
    const { account, newId, name, dropped, duplicates } = outcome;
    accounts.changed.push({ account, ...(newId ? { newId } : {}), ...(name ? { name } : {}), dropped, duplicates });
  }
  return undefined;
}

/**
 * At most `limit` tasks in flight: the engines write concurrently (FerretDB wrote 4,000 accounts
 * three times faster with four bulk writes in flight than with one), and a failure stops the run.
 */
class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
    const promise: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(promise));
    this.running.add(promise);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}

function emptyCounts(): WriteCounts {
  return { insert: 0, update: 0, unchanged: 0, failed: 0 };
}

/**
 * Compares what is stored with what would be written: ObjectIds by value, dates by instant,
 * arrays by element. The stored revision (the service's write counter) is not content.
 */
export function sameDocument(stored: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  const keys = Object.keys(wanted);
  const storedKeys = Object.keys(stored).filter((key) => key !== REVISION);
  return storedKeys.length === keys.length && keys.every((key) => sameValue(stored[key], wanted[key]));
}

/** As the service writes it: a new document at revision 0, a changed one a revision on. */
function withRevision<T extends object>(document: T, stored: Record<string, unknown> | undefined): T & { [REVISION]: number } {
  const previous = typeof stored?.[REVISION] === 'number' ? (stored[REVISION] as number) : undefined;
  return { ...document, [REVISION]: previous === undefined ? 0 : previous + 1 };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => sameValue(item, b[index]));
  }
  if (isObjectId(a) || isObjectId(b)) return isObjectId(a) && isObjectId(b) && a.equals(b);
  return a === b;
}

/** Bulk writes of what differs: inserts for new documents, replacements keyed by `_id` for changed ones. */
class Writer {
  readonly errors: MigrationReport['writeErrors'] = [];
  private indexed: Promise<void> | undefined;

  constructor(
    private readonly apply: boolean,
    private readonly devices: Model<Device>,
    private readonly accounts: Model<Account>,
  ) {}

  async write<T extends { _id: Types.ObjectId }>(
    collection: 'devices' | 'accounts',
    documents: T[],
    existing: Map<string, Record<string, unknown>>,
    counts: WriteCounts,
    onFailure?: (id: Types.ObjectId, message: string) => void,
  ): Promise<void> {
    const inserts: T[] = [];
    const replacements: T[] = [];
    for (const document of documents) {
      const stored = existing.get(document._id.toHexString());
      if (stored && sameDocument(stored, document)) counts.unchanged += 1;
      else (stored ? replacements : inserts).push(withRevision(document, stored));
    }
    counts.insert += inserts.length;
    counts.update += replacements.length;
    if (!this.apply || inserts.length + replacements.length === 0) return;
    await this.ensureIndexes();
    const model = collection === 'devices' ? this.devices : this.accounts;
    // Inserts for what the target did not hold when read (half the cost of upserts on both
    // engines); one that finds its `_id` taken since (another run got there first) is retried as
    // the upsert every changed document gets.
    const failedInserts = await this.bulk(model, inserts, 'insert');
    const retried = failedInserts.filter((failure) => failure.code === DUPLICATE_KEY).map((failure) => failure.document);
    const failures = [
      ...failedInserts.filter((failure) => failure.code !== DUPLICATE_KEY),
      ...(await this.bulk(model, [...replacements, ...retried], 'replace')),
    ];
    for (const { document, message } of failures) {
      counts[replacements.includes(document) ? 'update' : 'insert'] -= 1;
      counts.failed += 1;
      this.errors.push({ collection, id: document._id.toHexString(), message });
      onFailure?.(document._id, message);
    }
  }

  private async bulk<T extends { _id: Types.ObjectId }>(
    model: Model<Device> | Model<Account>,
    documents: T[],
    kind: 'insert' | 'replace',
  ): Promise<Array<{ document: T; code: unknown; message: string }>> {
    if (documents.length === 0) return [];
    const operations: mongo.AnyBulkWriteOperation[] = documents.map((document) =>
      kind === 'insert'
        ? { insertOne: { document: document as mongo.OptionalId<mongo.Document> } }
        : { replaceOne: { filter: { _id: document._id }, replacement: document, upsert: true } },
    );
    try {
      await model.collection.bulkWrite(operations, { ordered: false });
      return [];
    } catch (error) {
      if (!(error instanceof mongo.MongoBulkWriteError)) throw error;
      return [error.writeErrors].flat().map((failure) => ({
        document: documents[failure.index],
        code: failure.code,
        message: failure.errmsg ?? String(failure.code),
      }));
    }
  }

  /** The service's own indexes (unique myId and deviceUID, the multikey deviceIds), before the first write. */
  private ensureIndexes(): Promise<void> {
    this.indexed ??= (async () => {
      await this.devices.createIndexes();
      await this.accounts.createIndexes();
    })();
    return this.indexed;
  }
}
