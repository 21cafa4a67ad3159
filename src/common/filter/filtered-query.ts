import { type Model } from 'mongoose';
import { type MongoFilter, type ParsedFilter } from './filter.types.js';
import { type Page, pageOf } from './page.js';

/** Sort keys with `_id` last, so pages are stable when the asked-for keys tie. */
export function stableSort(order: Record<string, 1 | -1> | undefined): Record<string, 1 | -1> {
  return { ...order, _id: order?._id ?? 1 };
}

/**
 * The queries a parsed filter describes on one model (find a page, the first match, count),
 * written once for every resource. `resolve` turns the alternate keys a filter may name into
 * ObjectIds first; `within` narrows a page further (a reverse lookup, say).
 */
export class FilteredQuery<T> {
  constructor(
    private readonly model: Model<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
    /** What is read when the filter does not pick `fields`. */
    private readonly defaultProjection: Readonly<Record<string, 0 | 1>>,
    private readonly resolve: (where: MongoFilter) => Promise<MongoFilter> = async (where) => where,
  ) {}

  async page(filter: ParsedFilter, options: { within?: MongoFilter; projection?: Record<string, 0 | 1> } = {}): Promise<Page<T>> {
    const own = await this.resolve(filter.where);
    const where = options.within ? { $and: [options.within, own] } : own;
    const projection = options.projection ?? filter.fields ?? this.defaultProjection;
    return pageOf(
      (rows) => this.find(where, projection, filter, rows),
      () => this.model.countDocuments(where).exec(),
      filter.skip,
      // The parser gives every top-level filter a limit; only include scopes may lack one.
      filter.limit!,
    );
  }

  async first(filter: ParsedFilter, projection?: Record<string, 0 | 1>): Promise<T | undefined> {
    const [first] = await this.find(await this.resolve(filter.where), projection ?? filter.fields ?? this.defaultProjection, filter, 1);
    return first;
  }

  async count(where: MongoFilter): Promise<number> {
    return this.model.countDocuments(await this.resolve(where)).exec();
  }

  /**
   * Sets `changes` on every document `where` matches (validated as the schema says) and answers
   * how many matched. `onlyOne`, for changes that no two documents may share (a unique value):
   * the matches are read first, at most two; two are the error it gives, one gets the write,
   * alone and only if it still matches. So a unique index never stops such a write half done.
   */
  async update(where: MongoFilter, changes: Record<string, unknown>, onlyOne?: () => Error): Promise<number> {
    const resolved = await this.resolve(where);
    const update = { $set: changes };
    const options = { runValidators: true };
    if (!onlyOne) return (await this.model.updateMany(resolved, update, options).exec()).matchedCount;
    const matches = await this.model.find(resolved, { _id: 1 }).limit(2).lean<Array<{ _id: unknown }>>().exec();
    if (matches.length > 1) throw onlyOne();
    if (matches.length === 0) return 0;
    const filter = Object.keys(resolved).length > 0 ? { $and: [{ _id: matches[0]._id }, resolved] } : { _id: matches[0]._id };
    return (await this.model.updateOne(filter, update, options).exec()).matchedCount;
  }

  private find(where: MongoFilter, projection: Readonly<Record<string, 0 | 1>>, filter: ParsedFilter, rows: number): Promise<T[]> {
    return this.model.find(where, projection).sort(stableSort(filter.order)).skip(filter.skip).limit(rows).lean<T[]>().exec();
  }
}
