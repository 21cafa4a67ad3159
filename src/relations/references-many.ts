import { Logger, ServiceUnavailableException } from '@nestjs/common';
import mongoose, { type Connection, type Model, type Query, type Schema, Types } from 'mongoose';
import { isWriteConflict, notFound, preconditionFailed, unprocessable } from '../common/errors.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { type EntityTagCondition, versionCondition } from '../common/http/entity-tags.js';
import { projectionWith, without } from '../common/filter/projection.js';
import { modelShape } from '../common/schema/model-shape.js';
import { REVISION } from '../common/schema/revision.plugin.js';
// The marks, pulls and removals go through the driver's collection, which Mongoose's own
// `maxTimeMS` never reaches: timeLimit gives them the same limit, so no deletion leaves work
// running in the database after its request has been answered (DESIGN.md, Invariant 4).
import { timeLimit } from '../common/schema/time-limit.js';
import { describeKey, isIdKey, type Key, KeyReader, resolveAlternateKeys } from './keys.js';
import { type ReferencesManyDefinition } from './references-many.definition.js';
import { chunks, IN_BATCH, IN_REPLY, WRITE_BATCH } from './batches.js';
import { RelationRuleError } from './relation-rule.error.js';
import { countLinked, includeInto, pageOfLinked } from './references-many.reads.js';
import { placeIn, type Position, sameList } from './position.js';

/**
 * The referencesMany relation: its writes and the deletion of its targets, which together keep
 * DESIGN.md's Invariants 1–3 on every engine whose single-document writes are atomic, without
 * transactions. The two halves are argued together because each relies on the other's order.
 *
 * ## Deleting a target
 *
 * Deleting a document that referencesMany relations point at (a Device), so that no id of it
 * survives in any source list, whichever path deleted it and even if the process dies half way
 * (DESIGN.md, Invariant 1). Every deletion runs in three steps, each an atomic single-document
 * or per-document write that any engine performs alike:
 *
 *   M  mark:   the target gets `deletingSince` and its unique values are moved aside (so its
 *              myId can be taken again at once). From here on no read sees it: every query
 *              on the model hides marked documents, and a link re-checks the target after it
 *              writes (references-many.ts), so a link racing the deletion takes itself back.
 *   P  pull:   its id is pulled from every source list that names it, one updateMany per path.
 *   R  remove: the marked document is removed; a sweeper does this shortly after, in batches,
 *              and at start-up it finishes every deletion a killed process left after M (it
 *              repeats P first, which is idempotent, then R).
 *
 * A process killed between M and P leaves a marked target whose id is still referenced: reads
 * already treat it as gone and the start-up sweep pulls it. Killed between P and R, it leaves
 * only the marked document, which the sweep removes. Without M first (delete, then pull, as
 * a post hook does) a kill between the two would leave the id dangling with nothing left to
 * say it must go.
 *
 * The hooks below run M and P for every Mongoose delete of the model (findOneAndDelete and
 * findByIdAndDelete, deleteOne and deleteMany on queries, document deleteOne) and answer as
 * the skipped operation would. A findAndModify with `remove` is never sent: FerretDB 2.7 with
 * DocumentDB crashes its PostgreSQL backend on the second one in a session (README, Running on
 * FerretDB), and M needs an update there anyway.
 */

export const DELETING = 'deletingSince';
const HIDDEN = { [DELETING]: { $exists: false } } as const;
const logger = new Logger('Deletion');

type Id = Types.ObjectId;
type AnyModel = Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type AnyQuery = Query<unknown, unknown>;

/** The plugin a relation target's schema applies: the deletion protocol and the read filter. */
export function referencesManyTarget(schema: Schema): void {
  schema.add({ [DELETING]: { type: Date, select: false } });
  schema.index({ [DELETING]: 1 }, { sparse: true });

  // Reads never see a document whose deletion has begun. A lookup by `_id` or a unique key
  // stays exactly that (so every engine answers it from the index; one with an extra condition
  // is a collection scan on mongo-java-server) and marked documents are dropped from its
  // result; other reads, counts and updates get the condition. Only the protocol's own
  // queries, which name `deletingSince`, see marked documents.
  schema.pre(['find', 'findOne'], function (this: AnyQuery) {
    if (DELETING in this.getFilter()) return;
    if (!isKeyLookup(this.getFilter(), uniquePaths(this.model.schema))) {
      this.where(HIDDEN);
      return;
    }
    const projection = this.projection();
    // `+path` is how a select:false path is asked for, but Mongoose drops it beside `{ _id: 1 }`.
    if (projection && Object.values(projection).some((flag) => flag === 1 || flag === true))
      this.projection({ ...projection, [DELETING]: 1 });
    else this.select(`+${DELETING}`);
    this.transform((result: unknown) => (Array.isArray(result) ? result.filter(isLive) : isLive(result) ? result : null));
  });
  const conditioned = ['countDocuments', 'distinct', 'updateOne', 'updateMany', 'findOneAndUpdate', 'replaceOne'];
  schema.pre(conditioned as never, function (this: AnyQuery) {
    if (!(DELETING in this.getFilter())) this.where(HIDDEN);
  });
  schema.pre('aggregate', function () {
    const [first] = this.pipeline() as Array<{ $match?: object }>;
    if (!(first?.$match && DELETING in first.$match)) this.pipeline().unshift({ $match: HIDDEN });
  });

  schema.pre('findOneAndDelete', async function (this: AnyQuery) {
    const projection = this.projection() ?? undefined;
    const found = await markOne(this.model, this.cast(this.model, this.getFilter()), { projection, sort: this.getOptions().sort });
    if (found) await finish(this.model, [found._id]);
    const lean = (this.mongooseOptions() as { lean?: unknown }).lean;
    throw mongoose.skipMiddlewareFunction(found && !lean ? this.model.hydrate(found) : found);
  });
  // A document's deleteOne() runs as a query deleteOne on its _id, so this covers it too.
  schema.pre('deleteOne', { document: false, query: true }, async function (this: AnyQuery) {
    const found = await markOne(this.model, this.cast(this.model, this.getFilter()), { projection: { _id: 1 } });
    if (found) await finish(this.model, [found._id]);
    throw mongoose.skipMiddlewareFunction({ acknowledged: true, deletedCount: found ? 1 : 0 });
  });
  schema.pre('deleteMany', async function (this: AnyQuery) {
    const live = await this.model.find(this.getFilter(), { _id: 1 }).lean<Array<{ _id: Id }>>().exec();
    const ids = live.map((document) => document._id);
    await markIds(this.model, ids);
    await finish(this.model, ids);
    throw mongoose.skipMiddlewareFunction({ acknowledged: true, deletedCount: ids.length });
  });
}

/** `{ _id: v }`, `{ key: { $in: [...] } }`: one key with an index of its own, no operator but `$in`. */
function isKeyLookup(filter: Record<string, unknown>, unique: readonly string[]): boolean {
  const keys = Object.keys(filter);
  if (keys.length !== 1 || (keys[0] !== '_id' && !unique.includes(keys[0]))) return false;
  const value = filter[keys[0]];
  if (typeof value !== 'object' || value === null || value instanceof Types.ObjectId || Array.isArray(value)) return true;
  return Object.keys(value).every((operator) => operator === '$in' || !operator.startsWith('$'));
}

function isLive(document: unknown): boolean {
  if (typeof document !== 'object' || document === null) return false;
  const value = document instanceof mongoose.Document ? document.get(DELETING) : (document as Record<string, unknown>)[DELETING];
  if (value === undefined) return true;
  // Marked: hidden. The field is never shown on a live document either.
  return false;
}

/**
 * M for one document, on the driver's collection (no read filter, no casting: the filter is
 * cast already): marks the first match and answers it as it was, unless it was marked
 * already (then another deletion owns it, and this one found nothing).
 */
async function markOne(model: AnyModel, filter: object, options: { projection?: object; sort?: unknown }): Promise<{ _id: Id } | null> {
  const projection =
    options.projection && Object.keys(options.projection).length > 0 ? { ...options.projection, [DELETING]: 1 } : undefined;
  const before = await model.collection.findOneAndUpdate(filter, markUpdate(model), {
    ...timeLimit(model),
    returnDocument: 'before',
    ...(projection && { projection }),
    ...(options.sort ? { sort: options.sort as never } : {}),
  });
  if (!before || before[DELETING] !== undefined) return null;
  return before as unknown as { _id: Id };
}

/**
 * M for many documents: one mark per document, each by its `_id` alone (an index lookup on
 * every engine) and each moving its own values aside. Answers how many existed.
 */
export async function markIds(model: AnyModel, ids: readonly Id[]): Promise<number> {
  let matched = 0;
  for (const batch of chunks(ids, WRITE_BATCH)) {
    const result = await retryConflicts(() =>
      model.collection.bulkWrite(
        batch.map((_id) => ({ updateOne: { filter: { _id }, update: markUpdate(model) } })),
        { ordered: false, ...timeLimit(model) },
      ),
    );
    matched += result.matchedCount;
  }
  return matched;
}

/**
 * The mark: the time, and every unique value moved aside to a fresh ObjectId (never equal to
 * the strings clients give), so the unique indexes no longer hold the deleted document's values.
 */
function markUpdate(model: AnyModel): { $set: Record<string, unknown> } {
  const $set: Record<string, unknown> = { [DELETING]: new Date() };
  for (const path of uniquePaths(model.schema)) $set[path] = new Types.ObjectId();
  return { $set };
}

const uniqueCache = new WeakMap<Schema, string[]>();
/** The paths of a schema with a unique index of their own (`_id` aside). */
export function uniquePaths(schema: Schema): string[] {
  let paths = uniqueCache.get(schema);
  if (!paths) {
    paths = schema
      .indexes()
      .filter(([fields, options]) => options?.unique && Object.keys(fields).length === 1)
      .map(([fields]) => Object.keys(fields)[0])
      .filter((path) => path !== '_id');
    uniqueCache.set(schema, paths);
  }
  return paths;
}

/** P now, R soon: the marked ids are pulled everywhere, then queued for the sweeper. */
export async function finish(model: AnyModel, ids: readonly Id[]): Promise<void> {
  if (ids.length === 0) return;
  await pullEverywhere(model, ids);
  const queue = removals.get(model) ?? [];
  queue.push(...ids);
  removals.set(model, queue);
}

/**
 * P: one updateMany per array path, in every model of the connection, that references this
 * model. The paths are read from the schemas (`ref`), so a new referencing model is cleaned up
 * without touching the target's code. The filter matches only lists that hold the ids, which
 * is also what keeps FerretDB from re-applying the pull to a list that no longer holds them.
 */
export async function pullEverywhere(model: AnyModel, ids: readonly Id[]): Promise<void> {
  for (const batch of chunks(ids, IN_BATCH)) {
    const match = batch.length === 1 ? batch[0] : { $in: batch };
    await Promise.all(
      referencingPaths(model.db, model.modelName).map(({ source, path }) =>
        retryConflicts(() => updateLists(source, { [path]: match }, { $pull: { [path]: match } }, true)),
      ),
    );
  }
}

/**
 * Runs an idempotent write of many documents again when the engine gave up on it because of a
 * concurrent one: MongoDB retries its write conflicts itself, but FerretDB (on PostgreSQL)
 * answers two pulls that lock the same lists in opposite orders with "deadlock detected".
 */
async function retryConflicts<R>(write: () => Promise<R>, attempts = 5): Promise<R> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= attempts || !isWriteConflict(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt * Math.random()));
    }
  }
}

function referencingPaths(connection: Connection, target: string): Array<{ source: AnyModel; path: string }> {
  const found: Array<{ source: AnyModel; path: string }> = [];
  for (const name of connection.modelNames()) {
    const source = connection.model<unknown>(name) as AnyModel;
    source.schema.eachPath((path, type) => {
      const element = (type as { embeddedSchemaType?: { instance?: string; options?: { ref?: unknown } } }).embeddedSchemaType;
      if (type.instance === 'Array' && element?.instance === 'ObjectId' && element.options?.ref === target) found.push({ source, path });
    });
  }
  return found;
}

/**
 * A write of source lists on the driver's collection, as the model would send it: `updatedAt`
 * set when the schema keeps timestamps, the revision incremented, the connection's time limit.
 * The relation's writes are its hot path (a link is the benchmark's W3, a pull runs for every
 * deleted target), and Mongoose's casting and middleware cost as much CPU as the write itself;
 * everything these writes carry is already cast by the relation.
 */
export function updateLists(
  model: AnyModel,
  filter: Record<string, unknown>,
  update: { $set?: Record<string, unknown> } & Record<string, unknown>,
  many = false,
) {
  const stamped = {
    ...update,
    $set: { ...update.$set, ...(model.schema.path('updatedAt') && { updatedAt: new Date() }) },
    $inc: { [REVISION]: 1 },
  };
  const options = timeLimit(model);
  return many ? model.collection.updateMany(filter, stamped, options) : model.collection.updateOne(filter, stamped, options);
}

/** R of a batch: the marked documents among `ids`, and only marked ones. */
function removeMarked(model: AnyModel, ids: readonly Id[]) {
  return retryConflicts(() => model.collection.deleteMany({ _id: { $in: ids }, [DELETING]: { $exists: true } }, timeLimit(model)));
}

/** Marked ids whose P is done and whose R waits for the sweeper, per model. */
const removals = new WeakMap<AnyModel, Id[]>();

/** R for what this process has pulled already. */
export async function removePulled(model: AnyModel): Promise<number> {
  const ids = removals.get(model) ?? [];
  removals.delete(model);
  let removed = 0;
  for (const batch of chunks(ids, IN_BATCH)) {
    removed += (await removeMarked(model, batch)).deletedCount;
  }
  return removed;
}

/**
 * Finishes deletions nobody is finishing: every document marked before `before` (all of them at
 * start-up, when a killed process may have left some) gets P again and R. Idempotent, and safe
 * beside another instance doing the same.
 */
export async function finishAbandoned(model: AnyModel, before = new Date()): Promise<number> {
  let finished = 0;
  for (;;) {
    const marked = await model
      .find({ [DELETING]: { $lt: before } }, { _id: 1 })
      .limit(WRITE_BATCH)
      .lean<Array<{ _id: Id }>>()
      .exec();
    if (marked.length === 0) return finished;
    const ids = marked.map((document) => document._id);
    await pullEverywhere(model, ids);
    for (const batch of chunks(ids, IN_BATCH)) await removeMarked(model, batch);
    finished += ids.length;
    if (marked.length < WRITE_BATCH) return finished;
  }
}

export function logFinished(count: number, model: string): void {
  if (count > 0) logger.log(`Finished ${count} unfinished ${model} deletion${count === 1 ? '' : 's'}`);
}

/*
 * ## Linking
 *
 * A link is two round trips, write first (a "read, then write" link needs a third to be safe):
 *
 *   A  push:   `updateOne({ _id, list: { $ne: id }, 'list.<max-1>': { $exists: false } },
 *              { $push: { list: id } })` — atomic on the one source document: the id goes in at
 *              most once (Invariant 2), at the end (Invariant 3), and only below the size limit.
 *   C  check:  the target is read back (the answer's body). Reads hide marked targets.
 *   U  undo:   if C finds no live target, the link that added the id pulls it out again (404).
 *
 * Why no dangling id survives a link racing a deletion (M, P, R above): if C sees the target
 * live, C ran before M, and A before C, so A's write is committed before P starts and P pulls
 * the id. If C sees it marked or gone, U pulls it. The same holds for a link that found the id
 * already present (another link added it, and that link's own C decides). A link named by an
 * alternate key reads the target first to learn its ObjectId, then does A and C.
 * What this does not cover: a process killed between A and U. For a marked target the start-up
 * sweep's P removes the id; for an id that never named anything, `npm run integrity -- --fix`.
 *
 * Writing first means an id that names nothing sits in the list from A to U. It must not cost
 * a concurrent link of a real target the last free slot, so a link that finds the list full
 * first pulls the ids in it that name no live target (`dropDead`) and tries again. A link that
 * pushed nothing reads the list to learn why (already linked: 200; full: 422) and tries again
 * when another request changed it in between; after MAX_ATTEMPTS such losses it answers 503.
 *
 * Every write that can add ids is guarded so it cannot be a no-op: A by `$ne`, link-many by
 * `$not: { $all }`, a placement by `$nin` or by the revision it read. Besides saying what the
 * write is for, this keeps FerretDB 2.7 + DocumentDB from failing a concurrent `$addToSet` that
 * found nothing to add when combined with another operator (Mongoose's `updatedAt`) with a
 * bogus "larger than MaxDocumentSize" error (README).
 *
 * ## Placing
 *
 * A link or link-many with a position (position.ts: start, end, before or after an anchor
 * already in the list) puts its ids there as one block, in their order, moving those already
 * linked; without one it is the link above. Two ways, each one single-document write:
 *
 *   A' push:  start or end, none of the ids linked yet: A with `$nin` for `$ne`, `$each`, and
 *             `$position: 0` for start; the limit as in A (`list.<max-k>` absent for k ids).
 *   S  set:   otherwise the list and its revision are read, the new list is worked out from
 *             it (placeIn), and written only if the revision is still the one read: with
 *             `$push` and `$position` when every id is new, else `$set` of the whole list. A
 *             lost compare-and-set reads again, at most MAX_PLACE_ATTEMPTS times (then 503);
 *             a list already in the asked-for order is not written at all (idempotent). An
 *             anchor not in the list, or among the ids, is a 422 naming `position`.
 *
 * Why S keeps the invariants although it writes a list it read: every write of a source list
 * increments its revision (`updateLists` does, and the revision plugin for writes through the
 * model), so S writes only over exactly the list it read. From that list it drops nothing but
 * the ids it moves and repeats nothing (Invariant 2), and it checks the limit on it. A deletion
 * racing S: M does not touch the list; P pulls the id in one write per list, which increments
 * the revision. If P wrote this list before S, either S read the list after P (the id is not in
 * it) or its compare-and-set fails and it reads again; if P comes after S, P pulls the id from
 * the list S wrote. So S never writes back an id P has pulled, and P finds every id S kept
 * (Invariant 1). The ids S adds are checked afterwards as any link's: C and U for one,
 * `settle` for link-many. A process killed around S or A' leaves what a kill around A leaves.
 */

type Doc = { _id: Id } & Record<string, unknown>;

/** Pushes tried before a write that keeps losing races on one list gives up (503, try again). */
const MAX_ATTEMPTS = 5;
/**
 * Compare-and-sets a placement tries (see "Placing"): each lost one means another write of the
 * list succeeded, so this many concurrent writers of one list all get through.
 */
const MAX_PLACE_ATTEMPTS = 10;

/** The ids of `ids` not in `list`, in the order of `ids`. */
function missingFrom(list: readonly Id[], ids: readonly Id[]): Id[] {
  const present = new Set(list.map((id) => id.toHexString()));
  return ids.filter((id) => !present.has(id.toHexString()));
}

function busy() {
  return new ServiceUnavailableException({ message: 'The list changed under this request too many times; try again' });
}

export class ReferencesMany<S extends { _id: Id } = Doc, T extends { _id: Id } = Doc> {
  private readonly source: string;
  private readonly target: string;

  constructor(
    readonly definition: ReferencesManyDefinition,
    private readonly connection: Connection,
    readonly maxSize: number,
  ) {
    this.source = definition.source.toLowerCase();
    this.target = definition.target.toLowerCase();
  }

  // Models are looked up when first used: the feature modules compile them after this exists.
  get sources(): AnyModel {
    return this.connection.model<unknown>(this.definition.source) as AnyModel;
  }

  get targets(): AnyModel {
    return this.connection.model<unknown>(this.definition.target) as AnyModel;
  }

  private get list(): string {
    return this.definition.foreignKey;
  }

  private cache?: { keys: KeyReader; sourceFields: Record<string, 1>; targetFields: Record<string, 1> };
  private get shapes() {
    this.cache ??= {
      keys: new KeyReader(
        this.targets.schema,
        this.definition.alternateKey,
        `an ObjectId (24 hexadecimal characters)${this.definition.alternateKey ? ` or a ${this.definition.alternateKey}` : ''}`,
      ),
      // With the revision: a source answered carries its version (its ETag).
      sourceFields: { ...modelShape(this.sources.schema).projection, [REVISION]: 1 },
      targetFields: { ...modelShape(this.targets.schema).projection },
    };
    return this.cache;
  }

  /** How the relation reads a target's key (an ObjectId or its alternate key). */
  get keys(): KeyReader {
    return this.shapes.keys;
  }

  /** Links a target (idempotent) and answers it; see "Linking" above, and "Placing" for a position. */
  async link(sourceId: Id, key: Key, position?: Position): Promise<T> {
    const resolved = isIdKey(key) ? undefined : await this.findTarget(key);
    const targetId = isIdKey(key) ? key._id : resolved!._id;
    if (position) return this.linkAt(sourceId, key, targetId, position);
    for (let attempt = 1; ; attempt += 1) {
      const { modifiedCount } = await updateLists(
        this.sources,
        { _id: sourceId, [this.list]: { $ne: targetId }, [`${this.list}.${this.maxSize - 1}`]: { $exists: false } },
        { $push: { [this.list]: targetId } },
      );
      const target = await this.targets.findOne({ _id: targetId }, this.shapes.targetFields).lean<T>().exec();
      if (!target) {
        if (modifiedCount === 1)
          await updateLists(this.sources, { _id: sourceId, [this.list]: targetId }, { $pull: { [this.list]: targetId } });
        throw this.targetNotFound(key);
      }
      if (modifiedCount === 1) return target;
      // Not pushed: already linked, or the list is full, or (between the two reads) another
      // request changed the list; then the push is tried again.
      const list = await this.listOf(sourceId);
      if (list.some((id) => id.equals(targetId))) return target;
      if (list.length >= this.maxSize && !(await this.dropDead(sourceId, list))) throw this.tooMany();
      if (attempt === MAX_ATTEMPTS) throw busy();
    }
  }

  /** A link at a position: A' or S, then C, and U if C finds the target gone and the write added it. */
  private async linkAt(sourceId: Id, key: Key, targetId: Id, position: Position): Promise<T> {
    const added = await this.place(sourceId, [targetId], position);
    const target = await this.targets.findOne({ _id: targetId }, this.shapes.targetFields).lean<T>().exec();
    if (!target) {
      if (added) await updateLists(this.sources, { _id: sourceId, [this.list]: targetId }, { $pull: { [this.list]: targetId } });
      throw this.targetNotFound(key);
    }
    return target;
  }

  /**
   * Puts `ids` at `position` as one block, moving those already linked (see "Placing"), and
   * answers whether it added any. 422 naming `position` for an anchor that is not linked or is
   * one of `ids`, or when the new ids would pass the limit.
   */
  private async place(sourceId: Id, ids: Id[], position: Position): Promise<boolean> {
    if (position.at !== 'before' && position.at !== 'after' && ids.length > 0 && ids.length <= IN_BATCH) {
      const { modifiedCount } = await updateLists(
        this.sources,
        { _id: sourceId, [this.list]: { $nin: ids }, [`${this.list}.${this.maxSize - ids.length}`]: { $exists: false } },
        { $push: { [this.list]: { $each: ids, ...(position.at === 'start' && { $position: 0 }) } } },
      );
      if (modifiedCount === 1) return true;
    }
    const anchor = 'anchor' in position ? await this.anchorOf(position.anchor) : undefined;
    for (let attempt = 1; attempt <= MAX_PLACE_ATTEMPTS; attempt += 1) {
      const { list, rev } = await this.readList(sourceId);
      const placement = placeIn(list, ids, position.at, anchor?._id);
      if ('problem' in placement) throw this.misplaced(placement.problem, sourceId, anchor!.key);
      if (sameList(placement.list, list)) return false;
      const missing = missingFrom(list, ids);
      if (list.length + missing.length > this.maxSize) {
        if (await this.dropDead(sourceId, list)) continue;
        throw this.tooMany();
      }
      const update =
        missing.length === ids.length
          ? { $push: { [this.list]: { $each: ids, $position: placement.index } } }
          : { $set: { [this.list]: placement.list } };
      const { modifiedCount } = await updateLists(this.sources, { _id: sourceId, [REVISION]: rev }, update);
      if (modifiedCount === 1) return missing.length > 0;
      // Another write changed the list since it was read: wait a little, so that writers
      // racing for one list do not keep colliding, and read it again.
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt * Math.random()));
    }
    throw busy();
  }

  /** The anchor's ObjectId (an alternate key is looked up); 422 naming `position` when it names no target. */
  private async anchorOf(key: Key): Promise<{ _id: Id; key: Key }> {
    if (isIdKey(key)) return { _id: key._id, key };
    const target = await this.targets.findOne(key, { _id: 1 }).lean<Doc>().exec();
    if (!target) throw this.misplaced('anchor_not_linked', undefined, key);
    return { _id: target._id, key };
  }

  private misplaced(problem: 'anchor_not_linked' | 'anchor_placed', sourceId: Id | undefined, anchor: Key) {
    const named = `${this.target} ${describeKey(anchor)}`;
    const message =
      problem === 'anchor_placed'
        ? `position: ${named} is one of the ${this.definition.name} being placed; anchor the block to another`
        : sourceId
          ? `position: ${named} is not linked to ${this.source} ${sourceId.toHexString()}`
          : `position: no ${named}`;
    return unprocessable(message, [{ path: 'position', code: problem, message }]);
  }

  /** Unlinks a target; the target itself stays. 404 unless it was linked. */
  async unlink(sourceId: Id, key: Key): Promise<void> {
    const targetId = await this.idOf(key);
    const result = await updateLists(this.sources, { _id: sourceId, [this.list]: targetId }, { $pull: { [this.list]: targetId } });
    if (result.matchedCount === 0) throw await this.notLinked(sourceId, key);
  }

  /** The target's ObjectId when it is linked to the source; 404 otherwise. */
  async assertLinked(sourceId: Id, key: Key): Promise<Id> {
    const targetId = await this.idOf(key);
    if (!(await this.sources.exists({ _id: sourceId, [this.list]: targetId }).exec())) throw await this.notLinked(sourceId, key);
    return targetId;
  }

  /**
   * Links several targets, all or nothing: every key resolved first (422 naming the unknown
   * ones), then one write that appends those not linked yet, in the given order, admitted only
   * if the list stays within the limit; then the targets are checked as after any write of ids.
   */
  async linkMany(sourceId: Id, values: readonly unknown[], position?: Position): Promise<S> {
    await this.assertSource(sourceId);
    const ids = await this.resolveKeys(values);
    if (position) await this.place(sourceId, ids, position);
    for (let attempt = 1; !position && ids.length > 0; attempt += 1) {
      const outcome = ids.length <= IN_BATCH ? await this.addToSet(sourceId, ids) : await this.appendToRead(sourceId, ids);
      if (outcome === 'done') break;
      if (outcome === 'full' && !(await this.dropDead(sourceId, await this.listOf(sourceId)))) throw this.tooMany();
      if (attempt === MAX_ATTEMPTS) throw busy();
    }
    return this.settle(await this.findSource(sourceId));
  }

  /**
   * A few ids: one atomic `$addToSet`, whose filter admits it only if the union stays within
   * the limit and something is added. Nothing written: the list is read to say why.
   */
  private async addToSet(sourceId: Id, ids: Id[]): Promise<'done' | 'full' | 'changed'> {
    const { matchedCount } = await this.sources
      .updateOne(
        {
          _id: sourceId,
          [this.list]: { $not: { $all: ids } },
          $expr: { $lte: [{ $size: { $setUnion: [`$${this.list}`, ids] } }, this.maxSize] },
        },
        { $addToSet: { [this.list]: { $each: ids } } },
      )
      .exec();
    if (matchedCount === 1) return 'done';
    const list = await this.listOf(sourceId);
    const missing = missingFrom(list, ids).length;
    if (missing === 0) return 'done';
    return list.length + missing > this.maxSize ? 'full' : 'changed';
  }

  /**
   * Many ids: the list is read, and what is missing from it is appended only if the list is
   * still the one read (compare and set on the revision). `$addToSet` of k ids costs k × the list's length on
   * engines that match by scanning (mongo-java-server); this costs the list's length plus k.
   */
  private async appendToRead(sourceId: Id, ids: Id[]): Promise<'done' | 'full' | 'changed'> {
    const { list, rev } = await this.readList(sourceId);
    const missing = missingFrom(list, ids);
    if (missing.length === 0) return 'done';
    if (list.length + missing.length > this.maxSize) return 'full';
    const { modifiedCount } = await this.sources
      .updateOne({ _id: sourceId, [REVISION]: rev }, { $push: { [this.list]: { $each: missing } } })
      .exec();
    return modifiedCount === 1 ? 'done' : 'changed';
  }

  /**
   * Replaces the whole list with `values`, in that order. With `ifMatch`, only if the source is
   * at a version it names: the condition is part of the write's filter (412 otherwise).
   */
  async replace(sourceId: Id, values: readonly unknown[], ifMatch?: EntityTagCondition): Promise<S> {
    await this.assertSource(sourceId);
    const ids = await this.resolveKeys(values);
    const source = await this.sources
      .findOneAndUpdate(
        { _id: sourceId, ...versionCondition(ifMatch) },
        { $set: { [this.list]: ids } },
        { returnDocument: 'after', projection: this.shapes.sourceFields },
      )
      .lean<S>()
      .exec();
    if (!source) throw await this.missedSource(sourceId, ifMatch);
    return this.settle(source);
  }

  /** Why a write of one source matched nothing: 412 when only its version did not match, else 404. */
  async missedSource(sourceId: Id, ifMatch: EntityTagCondition | undefined) {
    const exists = ifMatch !== undefined && (await this.sources.exists({ _id: sourceId }).exec()) !== null;
    return exists ? preconditionFailed(`${this.definition.source} ${sourceId.toHexString()}`) : this.sourceNotFound(sourceId);
  }

  /**
   * After any write that set ids on a source (create, replace, link-many): a target deleted
   * between the resolution of its key and the write is pulled again, as U does for one link.
   */
  async settle(source: S): Promise<S> {
    const ids = (source as unknown as Doc)[this.list] as Id[];
    if (ids.length === 0) return source;
    const vanished = await this.notLive(ids);
    if (vanished.length === 0) return source;
    const settled = await this.sources
      .findOneAndUpdate(
        { _id: source._id, [this.list]: { $in: vanished } },
        { $pull: { [this.list]: { $in: vanished } } },
        { returnDocument: 'after', projection: this.shapes.sourceFields },
      )
      .lean<S>()
      .exec();
    return settled ?? this.findSource(source._id);
  }

  /**
   * After a write that set `ids` on many sources at once: those that name no live target (a
   * target deleted between the resolution of its key and the write) are pulled from every list,
   * as `settle` does for one source.
   */
  async settleMany(ids: readonly Id[]): Promise<void> {
    const vanished = await this.notLive(ids);
    if (vanished.length > 0) await pullEverywhere(this.targets, vanished);
  }

  /** Creates a target with `create` and links it; if the link is refused the target is deleted again. */
  async createLinked(sourceId: Id, create: () => Promise<T>): Promise<T> {
    await this.assertSource(sourceId);
    const target = await create();
    try {
      return await this.link(sourceId, { _id: target._id });
    } catch (error) {
      await this.targets.deleteOne({ _id: target._id }).exec();
      throw error;
    }
  }

  /**
   * Deletes the source's targets, and only those, with the deletion protocol: all are marked,
   * then taken out of this list with one write (when nobody changed the list since it was read;
   * else they are pulled with the others), then pulled from every other list. Linear in the
   * list's length on every engine: a `$pull` of n ids from a list of n costs n² on an engine
   * that matches by scanning (mongo-java-server).
   */
  async deleteLinked(sourceId: Id): Promise<{ count: number }> {
    const { list, rev } = await this.readList(sourceId);
    if (list.length === 0) return { count: 0 };
    const count = await markIds(this.targets, list);
    await this.sources.updateOne({ _id: sourceId, [REVISION]: rev }, { $set: { [this.list]: [] } }).exec();
    await finish(this.targets, list);
    return { count };
  }

  /** A page of the source's targets, in list order unless the filter orders them (references-many.reads.ts). */
  async page(sourceId: Id, filter: ParsedFilter): Promise<Page<T>> {
    const page = await pageOfLinked<T>(this.readContext(), sourceId, { ...filter, where: await this.resolveRefs(filter.where) });
    if (!page) throw this.sourceNotFound(sourceId);
    return page;
  }

  /** Counts the source's targets matching `where`, never the whole collection. */
  async count(sourceId: Id, where: MongoFilter): Promise<number> {
    const count = await countLinked(this.readContext(), sourceId, await this.resolveRefs(where));
    if (count === undefined) throw this.sourceNotFound(sourceId);
    return count;
  }

  /**
   * How a source query honours `include` of this relation: the projection to read (the list
   * is needed even when `fields` leaves it out) and how the documents read become the answer.
   */
  including(filter: ParsedFilter): { projection?: Record<string, 0 | 1>; answer: (sources: S[]) => Promise<S[]> } {
    const include = filter.include.find((item) => item.relation === this.definition.name);
    const { projection, strip } = projectionWith(filter.fields, include ? [this.list] : []);
    return {
      projection,
      answer: async (sources) => {
        const scope = include && { ...include.scope, where: await this.resolveRefs(include.scope.where) };
        const items = scope ? await includeInto(this.readContext(), sources, scope, this.definition.name) : sources;
        return strip.length > 0 ? items.map((source) => without(source, strip)) : items;
      },
    };
  }

  /** The condition that finds the sources referencing a target (served by the multikey index). */
  async referencing(key: Key): Promise<MongoFilter> {
    return { [this.list]: await this.idOf(key) };
  }

  /** 404 unless the target exists. */
  async assertTarget(key: Key): Promise<void> {
    await this.findTarget(key, { _id: 1 });
  }

  /** Replaces alternate keys named in a filter with ObjectIds. */
  resolveRefs<F extends MongoFilter>(where: F): Promise<F> {
    return resolveAlternateKeys(this.targets, this.definition.alternateKey, where);
  }

  /**
   * The ObjectIds of `values` (ObjectIds or alternate keys), in the given order, with one read:
   * 400 for malformed ones, 422 for more than the limit, or for unknown or repeated ones, naming
   * each by its index (DESIGN.md, Accounts).
   */
  async resolveKeys(values: readonly unknown[]): Promise<Id[]> {
    if (values.length > this.maxSize) throw this.tooMany();
    const keys = values.map((value) => this.keys.parse(value));
    const malformed = keys.flatMap((key, index) =>
      key ? [] : [{ index, code: `invalid_${this.target}_id`, reason: `must be ${this.keys.rule}` }],
    );
    if (malformed.length > 0) throw new RelationRuleError(400, malformed);
    if (keys.length === 0) return [];

    const alternate = this.definition.alternateKey;
    const ids = new Map<string, Id>();
    for (const batch of chunks(
      keys.flatMap((key) => (isIdKey(key!) ? [key._id] : [])),
      IN_BATCH,
    )) {
      for (const target of await this.targets
        .find({ _id: { $in: batch } }, { _id: 1 })
        .batchSize(IN_REPLY)
        .lean<Doc[]>()
        .exec()) {
        ids.set(target._id.toHexString(), target._id);
      }
    }
    for (const batch of chunks(
      keys.flatMap((key) => (isIdKey(key!) ? [] : [describeKey(key!)])),
      IN_BATCH,
    )) {
      for (const target of await this.targets
        .find({ [alternate!]: { $in: batch } }, { _id: 1, [alternate!]: 1 })
        .batchSize(IN_REPLY)
        .lean<Doc[]>()
        .exec()) {
        ids.set(`=${String(target[alternate!])}`, target._id);
      }
    }

    const problems: Array<{ index: number; code: string; reason: string }> = [];
    const seen = new Set<string>();
    const resolved: Id[] = [];
    keys.forEach((key, index) => {
      const id = isIdKey(key!) ? ids.get(key._id.toHexString()) : ids.get(`=${describeKey(key!)}`);
      if (!id) {
        problems.push({ index, code: `unknown_${this.target}`, reason: `no ${this.target} ${describeKey(key!)}` });
      } else if (seen.has(id.toHexString())) {
        problems.push({ index, code: `duplicate_${this.target}`, reason: `${this.target} ${describeKey(key!)} is listed more than once` });
      } else {
        seen.add(id.toHexString());
        resolved.push(id);
      }
    });
    if (problems.length > 0) throw new RelationRuleError(422, problems);
    return resolved;
  }

  /** The ObjectId a key names: an ObjectId as it is, without a read; an alternate key looked up (404). */
  async idOf(key: Key): Promise<Id> {
    return isIdKey(key) ? key._id : (await this.findTarget(key, { _id: 1 }))._id;
  }

  private async findTarget(key: Key, projection: Record<string, 1> = this.shapes.targetFields): Promise<T> {
    const target = await this.targets.findOne(key, projection).lean<T>().exec();
    if (!target) throw this.targetNotFound(key);
    return target;
  }

  private async findSource(sourceId: Id, projection: Record<string, 1> = this.shapes.sourceFields): Promise<S> {
    const source = await this.sources.findById(sourceId, projection).lean<S>().exec();
    if (!source) throw this.sourceNotFound(sourceId);
    return source;
  }

  /** The source's list; 404 for an unknown source. */
  private async listOf(sourceId: Id): Promise<Id[]> {
    return (await this.readList(sourceId)).list;
  }

  /** The source's list and its revision (src/common/schema/revision.plugin.ts), for a compare-and-set. */
  private async readList(sourceId: Id): Promise<{ list: Id[]; rev: number | null }> {
    const source = (await this.findSource(sourceId, { _id: 1, [this.list]: 1, [REVISION]: 1 })) as unknown as Doc;
    return { list: (source[this.list] as Id[] | undefined) ?? [], rev: (source[REVISION] as number | undefined) ?? null };
  }

  /**
   * Before a full list refuses a link: pulls the ids in it that name no live target, which are
   * links still being checked (A done, C to come) or left by a killed process. Only those can
   * make room; whether any did is the answer.
   */
  private async dropDead(sourceId: Id, list: readonly Id[]): Promise<boolean> {
    const dead = await this.notLive(list);
    if (dead.length === 0) return false;
    await this.sources.updateOne({ _id: sourceId, [this.list]: { $in: dead } }, { $pull: { [this.list]: { $in: dead } } }).exec();
    return true;
  }

  /** Which of `ids` name no live target. */
  private async notLive(ids: readonly Id[]): Promise<Id[]> {
    const live = new Set((await this.liveAmong(ids)).map((id) => id.toHexString()));
    return ids.filter((id) => !live.has(id.toHexString()));
  }

  /** The ids among `ids` of live targets, read by `_id` in batches. */
  private async liveAmong(ids: readonly Id[]): Promise<Id[]> {
    const live: Id[] = [];
    for (const batch of chunks(ids, IN_BATCH)) {
      for (const target of await this.targets
        .find({ _id: { $in: batch } }, { _id: 1 })
        .batchSize(IN_REPLY)
        .lean<Doc[]>()
        .exec())
        live.push(target._id);
    }
    return live;
  }

  private async assertSource(sourceId: Id): Promise<void> {
    if (!(await this.sources.exists({ _id: sourceId }).exec())) throw this.sourceNotFound(sourceId);
  }

  private readContext() {
    return { sources: this.sources, targets: this.targets, list: this.list, targetFields: this.shapes.targetFields };
  }

  private async notLinked(sourceId: Id, key: Key) {
    await this.assertSource(sourceId);
    return notFound(`${this.definition.target} ${describeKey(key)} is not linked to ${this.source} ${sourceId.toHexString()}`);
  }

  sourceNotFound(sourceId: Id) {
    return notFound(`${this.definition.source} ${sourceId.toHexString()} not found`);
  }

  targetNotFound(key: Key) {
    return notFound(`${this.definition.target} ${describeKey(key)} not found`);
  }

  private tooMany() {
    const reason = `a${/^[aeiou]/.test(this.source) ? 'n' : ''} ${this.source} references at most ${this.maxSize} ${this.definition.name}`;
    return new RelationRuleError(422, [{ code: `too_many_${this.definition.name}`, reason }]);
  }
}
