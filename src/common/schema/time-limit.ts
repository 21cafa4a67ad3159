import { type HydratedDocument, type Model } from 'mongoose';

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
 * Creates one document, with the time limit on its insert. This is what `Model.create` does
 * (defaults, validation, timestamps, then the driver's insertOne, whose errors are the ones the
 * exception filter maps), except that a save hands the driver no `maxTimeMS`. The schemas have
 * no save middleware to miss.
 */
export async function insertOne<T>(model: Model<T>, fields: Partial<T>): Promise<HydratedDocument<T>> {
  const document = new model(fields);
  await document.validate();
  (document as unknown as { initializeTimestamps?: () => void }).initializeTimestamps?.();
  await model.collection.insertOne(document.toBSON() as never, timeLimit(model as AnyModel));
  return document;
}
