import { type Types } from 'mongoose';
import { type ReferencesMany } from './references-many.js';

export interface RelationDamage {
  sourceId: string;
  /** Ids that name no (live) target. */
  dangling: string[];
  /** Ids that appear more than once (each listed once). */
  duplicates: string[];
  /** Ids past the limit, after dangling ones and repeats are removed. */
  overLimit: string[];
  repaired: boolean;
}

export interface RelationReport {
  sourcesScanned: number;
  targetsScanned: number;
  limit: number;
  damaged: RelationDamage[];
}

/** What a scan needs of a relation. */
type Scanned = Pick<ReferencesMany, 'definition' | 'maxSize' | 'sources' | 'targets'>;

/** Attempts at a conditional repair of one source before it is reported as busy. */
const REPAIR_ATTEMPTS = 5;

/**
 * Scans every source list of a relation for the invariants of DESIGN.md (no dangling id, no
 * repeat, at most the limit) and, when asked, repairs them. The service never produces such
 * damage; this is for data written around it (imports, scripts, an older service).
 */
export async function scanRelation(relation: Scanned, options: { fix: boolean }): Promise<RelationReport> {
  const list = relation.definition.foreignKey;
  const limit = relation.maxSize;
  const live = new Set<string>();
  for await (const target of relation.targets.find({}, { _id: 1 }).lean<{ _id: Types.ObjectId }>().cursor()) {
    live.add(target._id.toHexString());
  }

  const damaged: RelationDamage[] = [];
  let sourcesScanned = 0;
  for await (const source of relation.sources
    .find({}, { _id: 1, [list]: 1 })
    .lean<Record<string, Types.ObjectId[]> & { _id: Types.ObjectId }>()
    .cursor()) {
    sourcesScanned += 1;
    const damage = inspect(source[list] ?? [], live, limit);
    if (!damage) continue;
    const repaired = options.fix ? await repair(relation, source._id, source[list], live) : false;
    damaged.push({ sourceId: source._id.toHexString(), ...damage, repaired });
  }
  return { sourcesScanned, targetsScanned: live.size, limit, damaged };
}

/**
 * Writes the cleaned list only if the stored list is still the one that was read (a
 * conditional update, so a concurrent link is never overwritten); re-reads and retries
 * otherwise.
 */
async function repair(relation: Scanned, id: Types.ObjectId, read: Types.ObjectId[], live: Set<string>): Promise<boolean> {
  const list = relation.definition.foreignKey;
  let current = read;
  for (let attempt = 0; attempt < REPAIR_ATTEMPTS; attempt += 1) {
    const cleaned = clean(current, live).slice(0, relation.maxSize);
    const result = await relation.sources.updateOne({ _id: id, [list]: { $eq: current } }, { $set: { [list]: cleaned } }).exec();
    if (result.matchedCount === 1) return true;
    const fresh = await relation.sources
      .findById(id, { [list]: 1 })
      .lean<Record<string, Types.ObjectId[]>>()
      .exec();
    if (!fresh) return true;
    current = fresh[list];
    if (!inspect(current, live, relation.maxSize)) return true;
  }
  return false;
}

/** First occurrences of live targets, in order. */
function clean(ids: readonly Types.ObjectId[], live: ReadonlySet<string>): Types.ObjectId[] {
  const seen = new Set<string>();
  return ids.filter((id) => {
    const hex = id.toHexString();
    if (!live.has(hex) || seen.has(hex)) return false;
    seen.add(hex);
    return true;
  });
}

function inspect(
  ids: readonly Types.ObjectId[],
  live: ReadonlySet<string>,
  limit: number,
): Omit<RelationDamage, 'sourceId' | 'repaired'> | undefined {
  const hexes = ids.map((id) => id.toHexString());
  const dangling = [...new Set(hexes.filter((hex) => !live.has(hex)))];
  const counts = new Map<string, number>();
  for (const hex of hexes) counts.set(hex, (counts.get(hex) ?? 0) + 1);
  const duplicates = [...counts].filter(([, count]) => count > 1).map(([hex]) => hex);
  const overLimit = clean(ids, live)
    .slice(limit)
    .map((id) => id.toHexString());
  if (dangling.length === 0 && duplicates.length === 0 && overLimit.length === 0) return undefined;
  return { dangling, duplicates, overLimit };
}
