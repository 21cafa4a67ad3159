import { type Model, type Types } from 'mongoose';
import { stableSort } from '../common/filter/filtered-query.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page, pageOf } from '../common/filter/page.js';
import { projectionWith, without } from '../common/filter/projection.js';

/** The reads of a referencesMany relation: a page of one source's targets, their count, and include. */

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
 * fetched, however long the list is. With them, the targets are queried within the source's
 * ids; without an `order` the list order is kept.
 */
export async function pageOfLinked<T extends { _id: Id }>(
  context: ReadContext,
  sourceId: Id,
  filter: ParsedFilter,
): Promise<Page<T> | undefined> {
  const { sources, list } = context;
  const limit = filter.limit!;
  const { projection, strip } = projectionWith(filter.fields, ['_id']);
  const answer = (targets: T[]) => (strip.length > 0 ? targets.map((target) => without(target, strip)) : targets);

  if (Object.keys(filter.where).length === 0 && !filter.order) {
    const [slice] = await sources
      .aggregate<{ total: number; ids: Id[] }>([
        { $match: { _id: sourceId } },
        { $project: { _id: 0, total: { $size: `$${list}` }, ids: { $slice: [`$${list}`, filter.skip, limit] } } },
      ])
      .exec();
    if (!slice) return undefined;
    return { items: answer(inListOrder(slice.ids, await findAmong<T>(context, slice.ids, { projection }))), total: slice.total };
  }

  const ids = await listOf(context, sourceId);
  if (!ids) return undefined;
  if (filter.order) {
    const where = { $and: [{ _id: { $in: ids } }, filter.where] };
    const page = await pageOf(
      (rows) =>
        context.targets
          .find(where, projection ?? context.targetFields)
          .sort(stableSort(filter.order))
          .skip(filter.skip)
          .limit(rows)
          .lean<T[]>()
          .exec(),
      () => context.targets.countDocuments(where).exec(),
      filter.skip,
      limit,
    );
    return { items: answer(page.items), total: page.total };
  }
  const matching = await findAmong<Doc>(context, ids, { where: filter.where, projection: { _id: 1 } });
  const ordered = inListOrder(ids, matching).map((target) => target._id);
  const pageIds = ordered.slice(filter.skip, filter.skip + limit);
  return { items: answer(inListOrder(pageIds, await findAmong<T>(context, pageIds, { projection }))), total: ordered.length };
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
  if (ids.length === 0) return 0;
  return context.targets.countDocuments({ $and: [{ _id: { $in: ids } }, where] }).exec();
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
  const { projection, strip } = projectionWith(scope.fields, ['_id']);
  const targets = await findAmong<Doc>(context, ids, { where: scope.where, projection, order: scope.order });
  const end = scope.limit === undefined ? undefined : scope.skip + scope.limit;
  return sources.map((source, index) => {
    const ordered = scope.order ? inTargetOrder(targets, lists[index]) : inListOrder(lists[index], targets);
    const page = scope.skip > 0 || end !== undefined ? ordered.slice(scope.skip, end) : ordered;
    return { ...source, [name]: strip.length > 0 ? page.map((target) => without(target, strip)) : page };
  });
}

async function listOf(context: ReadContext, sourceId: Id): Promise<Id[] | undefined> {
  const source = await context.sources
    .findById(sourceId, { _id: 0, [context.list]: 1 })
    .lean<Record<string, Id[]>>()
    .exec();
  return source?.[context.list];
}

/** Targets among `ids` that exist and match `where`, in no particular order unless `order` is given. One query however many ids. */
function findAmong<T>(
  context: ReadContext,
  ids: readonly Id[],
  query: { where?: MongoFilter; projection?: Record<string, 0 | 1>; order?: Record<string, 1 | -1> },
): Promise<T[]> {
  if (ids.length === 0) return Promise.resolve([]);
  const among = { _id: { $in: ids } };
  const filter = query.where && Object.keys(query.where).length > 0 ? { $and: [among, query.where] } : among;
  const find = context.targets.find(filter, query.projection ?? context.targetFields);
  if (query.order) find.sort(stableSort(query.order));
  return find.lean<T[]>().exec();
}

/** `targets` arranged in the order of `ids`; ids without a target are left out. */
function inListOrder<T extends { _id: Id }>(ids: readonly Id[], targets: readonly T[]): T[] {
  const byId = new Map(targets.map((target) => [target._id.toHexString(), target]));
  return ids.flatMap((id) => byId.get(id.toHexString()) ?? []);
}

/** The `targets` (already sorted) that are among `ids`, keeping the targets' own order. */
function inTargetOrder<T extends { _id: Id }>(targets: readonly T[], ids: readonly Id[]): T[] {
  const own = new Set(ids.map((id) => id.toHexString()));
  return targets.filter((target) => own.has(target._id.toHexString()));
}
