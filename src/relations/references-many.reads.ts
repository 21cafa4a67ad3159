import { type Model, type Types } from 'mongoose';
import * as siftModule from 'sift';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { projectionWith, without } from '../common/filter/projection.js';
import { chunks, IN_BATCH, IN_REPLY } from './batches.js';

/**
 * The reads of a referencesMany relation: a page of one source's targets, their count, and
 * include. Targets are always fetched by `_id` (from the index on every engine) and a `where`
 * or `order` of the request is applied here, to at most the list's length of documents. Asking
 * the database for `{ $and: [{ _id: { $in: list } }, where] }` instead is no faster on a real
 * engine for lists of this size, and on mongo-java-server it is a scan of the whole collection
 * for every call; this way each read is linear in the list.
 */

// sift: MongoDB's query language in memory, the library Mongoose itself uses. It is CommonJS
// whose module object is the function and also carries it as `default`; imported from ESM the
// module object is our `default`, so the function is reached the same way in Node and in Jest.
const sift = siftModule.default.default;

type Id = Types.ObjectId;
type Doc = { _id: Id } & Record<string, unknown>;

export interface ReadContext {
  sources: Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  targets: Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The source's array path. */
  list: string;
  /** The targets' default projection. */
  targetFields: Record<string, 1>;
}

/**
 * A page of the source's targets, or undefined for an unknown source. Without `where` or
 * `order` only the page's ids are read from the source (`$slice`) and only those targets
 * fetched, however long the list is.
 */
export async function pageOfLinked<T extends { _id: Id }>(
  context: ReadContext,
  sourceId: Id,
  filter: ParsedFilter,
): Promise<Page<T> | undefined> {
  const limit = filter.limit!;
  if (Object.keys(filter.where).length === 0 && !filter.order) {
    const [slice] = await context.sources
      .aggregate<{ total: number; ids: Id[] }>([
        { $match: { _id: sourceId } },
        { $project: { _id: 0, total: { $size: `$${context.list}` }, ids: { $slice: [`$${context.list}`, filter.skip, limit] } } },
      ])
      .exec();
    if (!slice) return undefined;
    const { projection, strip } = projectionWith(filter.fields, ['_id']);
    const targets = inListOrder(slice.ids, await findAmong<T>(context, slice.ids, projection));
    return { items: strip.length > 0 ? targets.map((target) => without(target, strip)) : targets, total: slice.total };
  }
  const ids = await listOf(context, sourceId);
  if (!ids) return undefined;
  const matching = arrange(await findAmong<Doc>(context, ids), ids, filter);
  const page = matching.slice(filter.skip, filter.skip + limit);
  return { items: page.map((target) => pick(target, filter.fields)) as unknown as T[], total: matching.length };
}

/** Counts the source's targets matching `where`; undefined for an unknown source. */
export async function countLinked(context: ReadContext, sourceId: Id, where: MongoFilter): Promise<number | undefined> {
  if (Object.keys(where).length === 0) {
    const [result] = await context.sources
      .aggregate<{ count: number }>([{ $match: { _id: sourceId } }, { $project: { _id: 0, count: { $size: `$${context.list}` } } }])
      .exec();
    return result?.count;
  }
  const ids = await listOf(context, sourceId);
  if (!ids) return undefined;
  return (await findAmong<Doc>(context, ids)).filter(sift(where)).length;
}

/**
 * Adds each source its targets under the relation's name, with one read for all of them: in
 * list order, or in the scope's order, with the scope's where, fields, skip and limit applied
 * per source (LoopBack's inclusion resolver, per source rather than per query).
 */
export async function includeInto<S extends { _id: Id }>(
  context: ReadContext,
  sources: S[],
  scope: ParsedFilter,
  name: string,
): Promise<S[]> {
  const lists = sources.map((source) => (source as unknown as Doc)[context.list] as Id[]);
  // One source's ids are already unique (Invariant 2); several sources may share targets.
  const ids = lists.length === 1 ? lists[0] : [...new Map(lists.flat().map((id) => [id.toHexString(), id])).values()];
  const plain = Object.keys(scope.where).length === 0 && !scope.order;
  const { projection } = projectionWith(scope.fields, ['_id']);
  const targets = await findAmong<Doc>(context, ids, plain ? projection : undefined);
  const end = scope.limit === undefined ? undefined : scope.skip + scope.limit;
  return sources.map((source, index) => {
    const ordered = plain ? inListOrder(lists[index], targets) : arrange(targets, lists[index], scope);
    const page = scope.skip > 0 || end !== undefined ? ordered.slice(scope.skip, end) : ordered;
    return { ...source, [name]: page.map((target) => pick(target, scope.fields)) };
  });
}

async function listOf(context: ReadContext, sourceId: Id): Promise<Id[] | undefined> {
  const source = await context.sources
    .findById(sourceId, { _id: 0, [context.list]: 1 })
    .lean<Record<string, Id[]>>()
    .exec();
  return source?.[context.list];
}

/** The live targets among `ids`, by `_id` only, in batches (see IN_BATCH), in no particular order. */
async function findAmong<T>(context: ReadContext, ids: readonly Id[], projection?: Record<string, 0 | 1>): Promise<T[]> {
  const found: T[] = [];
  for (const batch of chunks(ids, IN_BATCH)) {
    found.push(
      ...(await context.targets
        .find({ _id: { $in: batch } }, projection ?? context.targetFields)
        .batchSize(IN_REPLY)
        .lean<T[]>()
        .exec()),
    );
  }
  return found;
}

/**
 * The targets of one list that match `where`, in the filter's order (ties and no order: the
 * list's order), as MongoDB would sort them: strings by code unit, dates and ObjectIds by value.
 */
function arrange<T extends Doc>(targets: readonly T[], list: readonly Id[], filter: ParsedFilter): T[] {
  const inList = inListOrder(list, targets);
  const matching = Object.keys(filter.where).length > 0 ? inList.filter(sift(filter.where)) : inList;
  if (!filter.order) return matching;
  const keys = Object.entries(filter.order);
  const position = new Map(list.map((id, index) => [id.toHexString(), index]));
  return matching.sort((a, b) => {
    for (const [field, direction] of keys) {
      const order = compare(a[field], b[field]);
      if (order !== 0) return order * direction;
    }
    return compare(a._id, b._id) || position.get(a._id.toHexString())! - position.get(b._id.toHexString())!;
  });
}

function compare(a: unknown, b: unknown): number {
  const x = a instanceof Date ? a.getTime() : a && typeof a === 'object' && 'toHexString' in a ? String(a) : a;
  const y = b instanceof Date ? b.getTime() : b && typeof b === 'object' && 'toHexString' in b ? String(b) : b;
  if (x === y) return 0;
  if (x === undefined || x === null) return -1;
  if (y === undefined || y === null) return 1;
  return (x as number | string) < (y as number | string) ? -1 : 1;
}

/** A document with only the fields a `fields` projection keeps (or without those it drops). */
function pick<T extends Doc>(document: T, fields: Record<string, 0 | 1> | undefined): Partial<T> {
  if (!fields) return document;
  const inclusive = Object.entries(fields).some(([field, flag]) => field !== '_id' && flag === 1);
  const result: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(document)) {
    const flag = fields[field];
    const keep = field === '_id' ? flag !== 0 : inclusive ? flag === 1 : flag !== 0;
    if (keep) result[field] = value;
  }
  return result as Partial<T>;
}

/** `targets` arranged in the order of `ids`; ids without a target are left out. */
function inListOrder<T extends { _id: Id }>(ids: readonly Id[], targets: readonly T[]): T[] {
  const byId = new Map(targets.map((target) => [target._id.toHexString(), target]));
  return ids.flatMap((id) => byId.get(id.toHexString()) ?? []);
}
