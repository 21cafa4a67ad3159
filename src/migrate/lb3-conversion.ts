import { createHash } from 'node:crypto';
import { type Schema, Types } from 'mongoose';
import { AccountSchema } from '../accounts/schemas/account.schema.js';
import { isObjectIdString } from '../common/pipes/parse-object-id.pipe.js';
import { MY_ID_MAX_LENGTH, myIdProblem } from '../devices/device-key.js';
import { DeviceSchema } from '../devices/schemas/device.schema.js';

/**
 * The conversion of a LoopBack 3 `referencesMany` database into ours, as pure functions of the
 * documents read: no I/O here, so every rule is unit-testable (lb3-conversion.spec.ts) and the
 * dry run reports exactly what `--apply` writes.
 */

/** A document as the driver read it from LoopBack's collections: anything may be missing or odd. */
export type SourceDocument = { _id?: unknown } & Record<string, unknown>;

export interface ConversionRules {
  /** The target's MAX_DEVICES_PER_ACCOUNT: a longer relation is refused, not truncated. */
  maxDevicesPerAccount: number;
  /** Field a device's deviceUID is taken from when it has none (`_id`, `myId` or a dotted path). */
  uidFrom?: string;
  /** Field an account's name is taken from when it has none (a dotted path). */
  nameFrom?: string;
}

export interface ConvertedDevice {
  _id: Types.ObjectId;
  myId: string;
  deviceUID: string;
  /** Undefined when the source says nothing: the writer keeps the target's or stamps the run. */
  createdAt?: Date;
  updatedAt?: Date;
}

export interface ConvertedAccount {
  _id: Types.ObjectId;
  name: string;
  deviceIds: Types.ObjectId[];
  createdAt?: Date;
  updatedAt?: Date;
}

/** Fields the two models keep; anything else in a source document is counted as not carried over. */
const DEVICE_FIELDS = new Set(['_id', 'myId', 'deviceUID', 'createdAt', 'updatedAt']);
const ACCOUNT_FIELDS = new Set(['_id', 'name', 'deviceIds', 'createdAt', 'updatedAt']);

// The limits come from the schemas, which declare them once.
const UID_MAX_LENGTH = maxLength(DeviceSchema, 'deviceUID');
const NAME_MAX_LENGTH = maxLength(AccountSchema, 'name');

function maxLength(schema: Schema, path: string): number {
  const value = (schema.path(path)?.options as { maxlength?: unknown } | undefined)?.maxlength;
  if (typeof value !== 'number') throw new Error(`${path} has no maxlength in its schema`);
  return value;
}

export function isObjectId(value: unknown): value is Types.ObjectId {
  // Checked by tag, not by class: a fixture built with another copy of bson is still an ObjectId.
  return typeof value === 'object' && value !== null && (value as { _bsontype?: unknown })._bsontype === 'ObjectId';
}

/**
 * What a stored value names, as LoopBack matched it: an ObjectId and its 24-hex string are the
 * same key (LoopBack's MongoDB connector coerced one into the other), a custom id is itself, an
 * integer its decimal form. Anything else names nothing.
 */
export function keyOf(value: unknown): string | undefined {
  if (isObjectId(value)) return value.toHexString();
  if (typeof value === 'string') return isObjectIdString(value) ? value.toLowerCase() : value === '' ? undefined : value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** A source id as the report shows it: ObjectIds bare, strings quoted, so `5f…` and `"5f…"` differ. */
export function describeValue(value: unknown): string {
  if (isObjectId(value)) return value.toHexString();
  if (value === undefined) return 'undefined';
  return JSON.stringify(value) ?? String(value);
}

/**
 * The `_id` a source document gets: its own when it is an ObjectId (or a 24-hex string of one),
 * otherwise one derived from its id, so that every run assigns the same one and a second
 * `--apply` finds what the first wrote. The derived id's timestamp part carries no meaning.
 */
export function targetIdOf(kind: 'device' | 'account', sourceId: unknown): Types.ObjectId | undefined {
  const key = keyOf(sourceId);
  if (key === undefined) return undefined;
  if (isObjectId(sourceId) || isObjectIdString(key)) return new Types.ObjectId(key);
  return new Types.ObjectId(createHash('sha256').update(`refmany:lb3:${kind}:${key}`).digest().subarray(0, 12));
}

function scalarString(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function fieldAt(document: SourceDocument, path: string): unknown {
  let value: unknown = document;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function timestampsOf(source: SourceDocument): { createdAt?: Date; updatedAt?: Date } {
  // LoopBack kept no timestamps unless a mixin did; an ObjectId still says when it was made.
  const createdAt = validDate(source.createdAt) ?? (isObjectId(source._id) ? source._id.getTimestamp() : undefined);
  return { createdAt, updatedAt: validDate(source.updatedAt) ?? createdAt };
}

function validDate(value: unknown): Date | undefined {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value : undefined;
}

export function countExtraFields(source: SourceDocument, kind: 'device' | 'account', into: Map<string, number>): void {
  const known = kind === 'device' ? DEVICE_FIELDS : ACCOUNT_FIELDS;
  for (const field of Object.keys(source)) if (!known.has(field)) into.set(field, (into.get(field) ?? 0) + 1);
}

/**
 * A myId that breaks our rules (DESIGN.md, Data) becomes a valid one, deterministically: runs of
 * characters outside `A–Z a–z 0–9 . _ : -` become `_`, the result is cut to the maximum length,
 * and one that would read as an ObjectId or a route word, or is empty, gets the prefix `lb3-`.
 * When that name is taken, or there was no myId at all, the device is named `lb3-<its _id>`.
 */
export function renameMyId(original: string | undefined, id: Types.ObjectId, taken: ReadonlySet<string>): string {
  const fallback = `lb3-${id.toHexString()}`;
  if (original === undefined) return fallback;
  let name = original.replace(/[^A-Za-z0-9._:-]+/g, '_').slice(0, MY_ID_MAX_LENGTH);
  if (myIdProblem(name) !== undefined) name = `lb3-${name}`.slice(0, MY_ID_MAX_LENGTH);
  return myIdProblem(name) === undefined && !taken.has(name) ? name : fallback;
}

export interface DeviceNotes {
  read: number;
  /** Source devices whose `_id` was not an ObjectId, with the one they got. */
  newIds: Array<{ device: string; id: string }>;
  renamedMyIds: Array<{ device: string; from: string | null; to: string; reason: string }>;
  /** Devices whose deviceUID was taken from `--uid-from`. */
  uidFrom: Array<{ device: string; field: string; deviceUID: string }>;
  /** Source documents that are another device under a second id; references to them follow. */
  merged: Array<{ device: string; into: string; reason: string }>;
  /** Devices not converted; references to them are dropped and reported per account. */
  refused: Array<{ device: string; reason: string }>;
  fieldsNotCarried: Record<string, number>;
}

interface DeviceEntry {
  source: SourceDocument;
  label: string;
  targetId?: Types.ObjectId;
  myIdCandidate?: string;
  converted?: ConvertedDevice;
  /** The converted `_id` as hex, computed once: resolving is the hot path of a conversion. */
  hex?: string;
  mergedInto?: DeviceEntry;
  refusal?: string;
}

/** `stored`: the value already is the ObjectId that will be stored (nothing to rewrite). */
export type Resolution = { id: Types.ObjectId; hex: string; stored: boolean } | { problem: string };

/** Every source device's fate, and how a stored reference resolves to a converted device. */
export class DevicePlan {
  private readonly byKey = new Map<string, DeviceEntry>();
  private readonly byTargetId = new Map<string, DeviceEntry>();
  private readonly planNotes: DeviceNotes;

  constructor(
    private readonly entries: DeviceEntry[],
    notes: Omit<DeviceNotes, 'refused' | 'newIds'>,
  ) {
    this.planNotes = { ...notes, newIds: [], refused: [] };
    // A stored value is matched against ids first, as LoopBack matched it, then against myIds.
    for (const entry of entries) {
      const key = keyOf(entry.source._id);
      if (key !== undefined && !this.byKey.has(key)) this.byKey.set(key, entry);
    }
    for (const entry of entries) {
      const key = entry.myIdCandidate === undefined ? undefined : keyOf(entry.myIdCandidate);
      if (key !== undefined && !this.byKey.has(key)) this.byKey.set(key, entry);
      if (entry.converted) this.byTargetId.set(entry.converted._id.toHexString(), entry);
    }
    for (const entry of entries) if (entry.refusal) this.planNotes.refused.push({ device: entry.label, reason: entry.refusal });
  }

  /** What happened to the devices so far, refusals made after planning included. */
  get notes(): DeviceNotes {
    const newIds = this.entries.flatMap((entry) =>
      entry.converted && !entry.refusal && !isObjectId(entry.source._id)
        ? [{ device: entry.label, id: entry.converted._id.toHexString() }]
        : [],
    );
    return { ...this.planNotes, newIds };
  }

  /** The devices to write, in a stable order. */
  get devices(): ConvertedDevice[] {
    return this.entries.flatMap((entry) => (entry.converted && !entry.refusal ? [entry.converted] : []));
  }

  /** Converted devices that keep the ObjectId `_id` they had. */
  get keptIds(): number {
    return this.entries.filter((entry) => entry.converted && !entry.refusal && isObjectId(entry.source._id)).length;
  }

  resolve(value: unknown): Resolution {
    const key = keyOf(value);
    if (key === undefined) return { problem: 'is not a device id' };
    let entry = this.byKey.get(key);
    while (entry?.mergedInto) entry = entry.mergedInto;
    if (!entry) return { problem: 'names no device' };
    if (entry.refusal || !entry.converted) return { problem: `names device ${entry.label}, which was refused` };
    const hex = entry.hex ?? (entry.hex = entry.converted._id.toHexString());
    return { id: entry.converted._id, hex, stored: isObjectId(value) && key === hex };
  }

  /** Takes a device out after planning (it clashes with the target, or its write failed). */
  refuse(id: Types.ObjectId, reason: string): void {
    const entry = this.byTargetId.get(id.toHexString());
    if (!entry || entry.refusal) return;
    entry.refusal = reason;
    this.planNotes.refused.push({ device: entry.label, reason });
  }
}

/**
 * Plans every device at once (a reference can name any of them). Where two source documents
 * claim one device — the same ObjectId under two spellings, or the same myId — the one with an
 * ObjectId `_id` wins (the shape LoopBack apps moved to), then the first in `_id` order; the
 * other is merged into it, so its references follow.
 */
export function planDevices(sources: readonly SourceDocument[], rules: ConversionRules): DevicePlan {
  const entries: DeviceEntry[] = sources.map((source) => ({ source, label: describeValue(source._id) }));
  const claimOrder = [...entries].sort((a, b) => Number(!isObjectId(a.source._id)) - Number(!isObjectId(b.source._id)));
  const notes: Omit<DeviceNotes, 'refused' | 'newIds'> = {
    read: sources.length,
    renamedMyIds: [],
    uidFrom: [],
    merged: [],
    fieldsNotCarried: {},
  };
  const extra = new Map<string, number>();
  const live = () => claimOrder.filter((entry) => !entry.refusal && !entry.mergedInto);

  const byTargetId = new Map<string, DeviceEntry>();
  for (const entry of claimOrder) {
    countExtraFields(entry.source, 'device', extra);
    entry.targetId = targetIdOf('device', entry.source._id);
    if (!entry.targetId) {
      entry.refusal = 'its _id is neither an ObjectId, a string nor an integer';
      continue;
    }
    const owner = byTargetId.get(entry.targetId.toHexString());
    if (owner) {
      entry.mergedInto = owner;
      notes.merged.push({ device: entry.label, into: owner.label, reason: 'both ids name the same ObjectId' });
      continue;
    }
    byTargetId.set(entry.targetId.toHexString(), entry);
  }

  // With `myId` declared `id: true`, LoopBack stored the myId as `_id` and no myId property.
  for (const entry of live()) {
    entry.myIdCandidate =
      'myId' in entry.source && entry.source.myId != null
        ? scalarString(entry.source.myId)
        : isObjectId(entry.source._id)
          ? undefined
          : keyOf(entry.source._id);
  }
  const byMyId = new Map<string, DeviceEntry>();
  for (const entry of live()) {
    const myId = entry.myIdCandidate;
    if (myId === undefined || myIdProblem(myId) !== undefined) continue;
    const owner = byMyId.get(myId);
    if (owner) {
      entry.mergedInto = owner;
      notes.merged.push({ device: entry.label, into: owner.label, reason: `both have myId ${JSON.stringify(myId)}` });
    } else byMyId.set(myId, entry);
  }
  const taken = new Set(byMyId.keys());
  const myIds = new Map<DeviceEntry, string>();
  for (const entry of live()) {
    const original = entry.myIdCandidate;
    let myId = original;
    if (myId === undefined || byMyId.get(myId) !== entry) {
      myId = renameMyId(original, entry.targetId!, taken);
      const reason =
        original !== undefined
          ? `myId ${myIdProblem(original)}`
          : entry.source.myId == null
            ? 'it has no myId'
            : 'its myId is empty or not a string';
      notes.renamedMyIds.push({ device: entry.label, from: original ?? null, to: myId, reason });
    }
    taken.add(myId);
    myIds.set(entry, myId);
  }

  // A device without deviceUID takes the one a document merged into it carries, if any.
  const mergedInto = new Map<DeviceEntry, DeviceEntry[]>();
  for (const entry of claimOrder) {
    let root = entry.mergedInto;
    while (root?.mergedInto) root = root.mergedInto;
    if (root) mergedInto.set(root, [...(mergedInto.get(root) ?? []), entry]);
  }
  const byUid = new Map<string, DeviceEntry>();
  for (const entry of live()) {
    const myId = myIds.get(entry)!;
    let deviceUID = scalarString(entry.source.deviceUID);
    const donor = deviceUID === undefined ? mergedInto.get(entry)?.find((merged) => scalarString(merged.source.deviceUID)) : undefined;
    if (donor) {
      deviceUID = scalarString(donor.source.deviceUID)!;
      notes.uidFrom.push({ device: entry.label, field: `deviceUID of ${donor.label}, merged into it`, deviceUID });
    }
    if (deviceUID === undefined && rules.uidFrom) {
      const field = rules.uidFrom;
      deviceUID = field === 'myId' ? myId : field === '_id' ? keyOf(entry.source._id) : scalarString(fieldAt(entry.source, field));
      if (deviceUID !== undefined) notes.uidFrom.push({ device: entry.label, field, deviceUID });
    }
    if (deviceUID === undefined) {
      entry.refusal = rules.uidFrom
        ? `it has no deviceUID and no ${rules.uidFrom} to take one from`
        : 'it has no deviceUID (name a field to take one from with --uid-from)';
      continue;
    }
    if (deviceUID.length > UID_MAX_LENGTH) {
      entry.refusal = `its deviceUID is longer than ${UID_MAX_LENGTH} characters`;
      continue;
    }
    const owner = byUid.get(deviceUID);
    if (owner) {
      entry.refusal = `deviceUID ${JSON.stringify(deviceUID)} is already device ${owner.label}'s`;
      continue;
    }
    byUid.set(deviceUID, entry);
    entry.converted = { _id: entry.targetId!, myId, deviceUID, ...timestampsOf(entry.source) };
  }

  notes.fieldsNotCarried = Object.fromEntries(extra);
  // Refusals are reported in source order, after the claims settled who owns what.
  return new DevicePlan(entries, notes);
}

export interface AccountOutcome {
  /** The source `_id` as the report shows it. */
  account: string;
  /** The `_id` it has in the target, converted or not (to tell whether a refused one is there). */
  id?: Types.ObjectId;
  /** Undefined when refused. */
  converted?: ConvertedAccount;
  refused?: string;
  /** The account's new `_id`, when its own was not an ObjectId. */
  newId?: string;
  name?: { from: string | null; to: string; reason: string };
  /** Stored values that name no converted device, each listed once. */
  dropped: Array<{ id: string; reason: string }>;
  /** Stored values naming a device already in the list (kept once, at its first place). */
  duplicates: string[];
  references: { read: number; kept: number; rewritten: number };
  extraFields: string[];
}

/** One account: its id, its name, and its references resolved, deduplicated and checked. */
export function convertAccount(source: SourceDocument, plan: DevicePlan, rules: ConversionRules): AccountOutcome {
  const outcome: AccountOutcome = {
    account: describeValue(source._id),
    dropped: [],
    duplicates: [],
    references: { read: 0, kept: 0, rewritten: 0 },
    extraFields: Object.keys(source).filter((field) => !ACCOUNT_FIELDS.has(field)),
  };
  const id = targetIdOf('account', source._id);
  if (!id) return { ...outcome, refused: 'its _id is neither an ObjectId, a string nor an integer' };
  outcome.id = id;
  if (!isObjectId(source._id) && !isObjectIdString(source._id)) outcome.newId = id.toHexString();

  const name = accountName(source, id, rules);
  if (name.reason) outcome.name = { from: name.original ?? null, to: name.value, reason: name.reason };

  const stored = source.deviceIds ?? [];
  if (!Array.isArray(stored)) return { ...outcome, refused: `its deviceIds is not an array (${describeValue(stored)})` };
  const deviceIds: Types.ObjectId[] = [];
  const seen = new Set<string>();
  const droppedSeen = new Set<string>();
  for (const value of stored as unknown[]) {
    outcome.references.read += 1;
    const resolved = plan.resolve(value);
    if ('problem' in resolved) {
      const label = describeValue(value);
      if (!droppedSeen.has(label)) outcome.dropped.push({ id: label, reason: resolved.problem });
      droppedSeen.add(label);
      continue;
    }
    const hex = resolved.hex;
    if (seen.has(hex)) {
      outcome.duplicates.push(describeValue(value));
      continue;
    }
    seen.add(hex);
    deviceIds.push(resolved.id);
    if (!resolved.stored) outcome.references.rewritten += 1;
  }
  outcome.references.kept = deviceIds.length;
  if (deviceIds.length > rules.maxDevicesPerAccount) {
    return {
      ...outcome,
      refused: `it references ${deviceIds.length} devices, more than MAX_DEVICES_PER_ACCOUNT (${rules.maxDevicesPerAccount})`,
    };
  }
  return { ...outcome, converted: { _id: id, name: name.value, deviceIds, ...timestampsOf(source) } };
}

function accountName(
  source: SourceDocument,
  id: Types.ObjectId,
  rules: ConversionRules,
): { value: string; original?: string; reason?: string } {
  const original = scalarString(source.name);
  if (original !== undefined && original.length <= NAME_MAX_LENGTH) return { value: original };
  if (original !== undefined)
    return { value: original.slice(0, NAME_MAX_LENGTH), original, reason: `longer than ${NAME_MAX_LENGTH} characters, cut` };
  const fromField = rules.nameFrom ? scalarString(fieldAt(source, rules.nameFrom)) : undefined;
  if (fromField !== undefined) return { value: fromField.slice(0, NAME_MAX_LENGTH), reason: `no name; taken from ${rules.nameFrom}` };
  return { value: `Account ${id.toHexString()}`, reason: 'no name; named after its id' };
}
