import { type HydratedDocument, type InsertManyOptions, type Model } from 'mongoose';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyModel = Model<any>;

/**
 * The connection's server-side time limit (DB_TIMEOUT_MS, set as Mongoose's `maxTimeMS` option),
 * for the commands that do not take it from the connection: those sent through the driver's
 * collection, and inserts.
 */
export function timeLimit(model: AnyModel): { maxTimeMS?: number } {
  const maxTimeMS = model.db.get('maxTimeMS') as number | undefined;
  return maxTimeMS === undefined ? {} : { maxTimeMS };
}

/**
 * Creates one document, with the time limit on its insert. `Model.create` saves, and a save
 * passes the driver no `maxTimeMS`; `insertMany` validates and applies defaults and timestamps
 * the same way and hands its options to the driver.
 */
export async function insertOne<T>(model: Model<T>, document: Partial<T>): Promise<HydratedDocument<T>> {
  // Mongoose's types leave out maxTimeMS, which it passes on to the driver with the rest.
  const options = timeLimit(model as AnyModel) as InsertManyOptions;
  const [created] = await model.insertMany([document], options);
  return created as HydratedDocument<T>;
}
