import { Logger, ServiceUnavailableException } from '@nestjs/common';
import mongoose, { type Connection, type Model, type Query, type Schema, Types } from 'mongoose';
import { notFound } from '../common/errors.js';
import { type MongoFilter, type ParsedFilter } from '../common/filter/filter.types.js';
import { type Page } from '../common/filter/page.js';
import { projectionWith, without } from '../common/filter/projection.js';
import { modelShape } from '../common/schema/model-shape.js';
import { describeKey, isIdKey, type Key, KeyReader, resolveAlternateKeys } from './keys.js';
import { type ReferencesManyDefinition } from './references-many.definition.js';
import { RelationRuleError } from './relation-rule.error.js';
import { countLinked, includeInto, pageOfLinked } from './references-many.reads.js';

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
const BATCH = 1000;
const logger = new Logger('Deletion');

type Id = Types.ObjectId;
type AnyModel = Model<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type AnyQuery = Query<unknown, unknown>;

/** The plugin a relation target's schema applies: the deletion protocol and the read filter. */
export function referencesManyTarget(schema: Schema): void {
  schema.add({ [DELETING]: { type: Date, select: false } });
  schema.index({ [DELETING]: 1 }, { sparse: true });

  // Reads and updates never see a document whose deletion has begun; only the protocol's own
  // queries, which name `deletingSince`, do.
  const reads = ['find', 'findOne', 'countDocuments', 'distinct', 'updateOne', 'updateMany', 'findOneAndUpdate', 'replaceOne'];
  schema.pre(reads as never, function (this: AnyQuery) {
    if (!(DELETING in this.getFilter())) this.where(HIDDEN);
  });
  schema.pre('aggregate', function () {
    const [first] = this.pipeline() as Array<{ $match?: object }>;
    if (!(first?.$match && DELETING in first.$match)) this.pipeline().unshift({ $match: HIDDEN });
  });

  schema.pre('findOneAndDelete', async function (this: AnyQuery) {
    const found = await markOne(this.model, this.getFilter(), { projection: this.projection() ?? undefined, sort: this.getOptions().sort });
    if (found) await finish(this.model, [found._id]);
    const lean = (this.mongooseOptions() as { lean?: unknown }).lean;
    throw mongoose.skipMiddlewareFunction(found && !lean ? this.model.hydrate(found) : found);
  });
  schema.pre('deleteOne', { document: false, query: true }, async function (this: AnyQuery) {
    const found = await markOne(this.model, this.getFilter(), { projection: { _id: 1 } });
    if (found) await finish(this.model, [found._id]);
    throw mongoose.skipMiddlewareFunction({ acknowledged: true, deletedCount: found ? 1 : 0 });
  });
  schema.pre('deleteMany', async function (this: AnyQuery) {
    const ids = await markMany(this.model, this.getFilter());
    await finish(this.model, ids);
    throw mongoose.skipMiddlewareFunction({ acknowledged: true, deletedCount: ids.length });
  });
  // A document's deleteOne() runs as a query deleteOne on its _id, so the hook above covers it.
}

/** M for one document: marks the first live match and answers it as it was before. */
function markOne(model: AnyModel, filter: object, options: { projection?: object; sort?: unknown }): Promise<{ _id: Id } | null> {
  return model
    .findOneAndUpdate({ ...filter, ...HIDDEN }, markUpdate(model), {
      ...options,
      returnDocument: 'before',
      timestamps: false,
    } as mongoose.QueryOptions)
    .lean<{ _id: Id }>()
    .exec();
}

/** M for every live match: the ids first, then one mark per document (each moves its own values aside). */
async function markMany(model: AnyModel, filter: object): Promise<Id[]> {
  const found = await model
    .find({ ...filter, ...HIDDEN }, { _id: 1 })
    .lean<Array<{ _id: Id }>>()
    .exec();
  const marked: Id[] = [];
  for (const batch of chunks(found.map((document) => document._id))) {
    const result = await model.bulkWrite(
      batch.map((_id) => ({ updateOne: { filter: { _id, ...HIDDEN }, update: markUpdate(model), timestamps: false } })),
      { ordered: false },
    );
    // Another deletion may have marked some in between; either way each is pulled below.
    if (result.modifiedCount === batch.length) marked.push(...batch);
    else marked.push(...(await stillOurs(model, batch)));
  }
  return marked;
}

/** Of `ids`, the ones now marked (by this deletion or a concurrent one): all need P. */
async function stillOurs(model: AnyModel, ids: Id[]): Promise<Id[]> {
  const found = await model
    .find({ _id: { $in: ids }, [DELETING]: { $exists: true } }, { _id: 1 })
    .lean<Array<{ _id: Id }>>()
    .exec();
  return found.map((document) => document._id);
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
function uniquePaths(schema: Schema): string[] {
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
async function finish(model: AnyModel, ids: Id[]): Promise<void> {
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
  for (const batch of chunks(ids)) {
    const match = batch.length === 1 ? batch[0] : { $in: batch };
    await Promise.all(
      referencingPaths(model.db, model.modelName).map(({ source, path }) =>
        source.updateMany({ [path]: match }, { $pull: { [path]: match } }).exec(),
      ),
    );
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

/** Marked ids whose P is done and whose R waits for the sweeper, per model. */
const removals = new WeakMap<AnyModel, Id[]>();

/** R for what this process has pulled already. */
export async function removePulled(model: AnyModel): Promise<number> {
  const ids = removals.get(model) ?? [];
  removals.delete(model);
  let removed = 0;
  for (const batch of chunks(ids)) {
    const result = await model.collection.deleteMany({ _id: { $in: batch }, [DELETING]: { $exists: true } });
    removed += result.deletedCount;
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
      .limit(BATCH)
      .lean<Array<{ _id: Id }>>()
      .exec();
    if (marked.length === 0) return finished;
    const ids = marked.map((document) => document._id);
    await pullEverywhere(model, ids);
    await model.collection.deleteMany({ _id: { $in: ids }, [DELETING]: { $exists: true } });
    finished += ids.length;
    if (marked.length < BATCH) return finished;
  }
}

export function logFinished(count: number, model: string): void {
  if (count > 0) logger.log(`Finished ${count} unfinished ${model} deletion${count === 1 ? '' : 's'}`);
}

function* chunks<T>(items: readonly T[], size = BATCH): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
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
 * `$not: { $all }`. Besides saying what the write is for, this keeps FerretDB 2.7 + DocumentDB
 * from failing a concurrent `$addToSet` that found nothing to add when combined with another
 * operator (Mongoose's `updatedAt`) with a bogus "larger than MaxDocumentSize" error (README).
 */

type Doc = { _id: Id } & Record<string, unknown>;

/** Pushes tried before a write that keeps losing races on one list gives up (503, try again). */
const MAX_ATTEMPTS = 5;

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
      sourceFields: { ...modelShape(this.sources.schema).projection },
      targetFields: { ...modelShape(this.targets.schema).projection },
    };
    return this.cache;
  }

  /** How the relation reads a target's key (an ObjectId or its alternate key). */
  get keys(): KeyReader {
    return this.shapes.keys;
  }

  /** Links a target (idempotent) and answers it; see "Linking" above. */
  async link(sourceId: Id, key: Key): Promise<T> {
    const resolved = isIdKey(key) ? undefined : await this.findTarget(key);
    const targetId = isIdKey(key) ? key._id : resolved!._id;
    for (let attempt = 1; ; attempt += 1) {
      const { modifiedCount } = await this.sources
        .updateOne(
          { _id: sourceId, [this.list]: { $ne: targetId }, [`${this.list}.${this.maxSize - 1}`]: { $exists: false } },
          { $push: { [this.list]: targetId } },
        )
        .exec();
      const target = await this.targets.findOne({ _id: targetId }, this.shapes.targetFields).lean<T>().exec();
      if (!target) {
        if (modifiedCount === 1)
          await this.sources.updateOne({ _id: sourceId, [this.list]: targetId }, { $pull: { [this.list]: targetId } }).exec();
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

  /** Unlinks a target; the target itself stays. 404 unless it was linked. */
  async unlink(sourceId: Id, key: Key): Promise<void> {
    const targetId = await this.idOf(key);
    const result = await this.sources.updateOne({ _id: sourceId, [this.list]: targetId }, { $pull: { [this.list]: targetId } }).exec();
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
   * ones), then one `$addToSet` whose filter admits it only if the union stays within the limit
   * and adds something; then the targets are checked as after any write of ids.
   */
  async linkMany(sourceId: Id, values: readonly unknown[]): Promise<S> {
    await this.assertSource(sourceId);
    const ids = await this.resolveKeys(values);
    for (let attempt = 1; ids.length > 0; attempt += 1) {
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
      if (matchedCount === 1) break;
      const list = await this.listOf(sourceId);
      const present = new Set(list.map((id) => id.toHexString()));
      const missing = ids.filter((id) => !present.has(id.toHexString())).length;
      if (missing === 0) break;
      if (list.length + missing > this.maxSize && !(await this.dropDead(sourceId, list))) throw this.tooMany();
      if (attempt === MAX_ATTEMPTS) throw busy();
    }
    return this.settle(await this.findSource(sourceId));
  }

  /** Replaces the whole list with `values`, in that order. */
  async replace(sourceId: Id, values: readonly unknown[]): Promise<S> {
    await this.assertSource(sourceId);
    const ids = await this.resolveKeys(values);
    const source = await this.sources
      .findOneAndUpdate(
        { _id: sourceId },
        { $set: { [this.list]: ids } },
        { returnDocument: 'after', projection: this.shapes.sourceFields },
      )
      .lean<S>()
      .exec();
    if (!source) throw this.sourceNotFound(sourceId);
    return this.settle(source);
  }

  /**
   * After any write that set ids on a source (create, replace, link-many): a target deleted
   * between the resolution of its key and the write is pulled again, as U does for one link.
   */
  async settle(source: S): Promise<S> {
    const ids = (source as unknown as Doc)[this.list] as Id[];
    if (ids.length === 0) return source;
    const live = await this.targets
      .find({ _id: { $in: ids } }, { _id: 1 })
      .lean<Array<{ _id: Id }>>()
      .exec();
    if (live.length === ids.length) return source;
    const present = new Set(live.map((target) => target._id.toHexString()));
    const vanished = ids.filter((id) => !present.has(id.toHexString()));
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

  /** Deletes the source's targets, and only those; each is pulled from every source. */
  async deleteLinked(sourceId: Id): Promise<{ count: number }> {
    const ids = await this.listOf(sourceId);
    if (ids.length === 0) return { count: 0 };
    const { deletedCount } = await this.targets.deleteMany({ _id: { $in: ids } }).exec();
    return { count: deletedCount };
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
    const byId = keys.flatMap((key) => (isIdKey(key!) ? [key._id] : []));
    const byAlternate = keys.flatMap((key) => (isIdKey(key!) ? [] : [describeKey(key!)]));
    const found = await this.targets
      .find(
        { $or: [{ _id: { $in: byId } }, ...(alternate ? [{ [alternate]: { $in: byAlternate } }] : [])] },
        { _id: 1, ...(alternate && { [alternate]: 1 }) },
      )
      .lean<Doc[]>()
      .exec();
    const ids = new Map<string, Id>();
    for (const target of found) {
      ids.set(target._id.toHexString(), target._id);
      if (alternate) ids.set(`=${String(target[alternate])}`, target._id);
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
    return ((await this.findSource(sourceId, { _id: 1, [this.list]: 1 })) as unknown as Doc)[this.list] as Id[];
  }

  /**
   * Before a full list refuses a link: pulls the ids in it that name no live target, which are
   * links still being checked (A done, C to come) or left by a killed process. Only those can
   * make room; whether any did is the answer.
   */
  private async dropDead(sourceId: Id, list: readonly Id[]): Promise<boolean> {
    const live = await this.targets
      .find({ _id: { $in: list } }, { _id: 1 })
      .lean<Array<{ _id: Id }>>()
      .exec();
    if (live.length === list.length) return false;
    const present = new Set(live.map((target) => target._id.toHexString()));
    const dead = list.filter((id) => !present.has(id.toHexString()));
    await this.sources.updateOne({ _id: sourceId, [this.list]: { $in: dead } }, { $pull: { [this.list]: { $in: dead } } }).exec();
    return true;
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
