import { type Query, type Schema, type UpdateQuery } from 'mongoose';

/** The path of a document's revision: a counter every write through its model increments. */
export const REVISION = 'rev';

/**
 * Revisions: `rev` goes up with every update sent through the model, so "the document is still
 * as I read it" is a cheap condition on one number (compare and set), on every engine. It is
 * bookkeeping, never shown (`select: false`).
 */
export function revision(schema: Schema): void {
  schema.add({ [REVISION]: { type: Number, default: 0, select: false } });
  schema.pre(['updateOne', 'updateMany', 'findOneAndUpdate'], function (this: Query<unknown, unknown>) {
    const update = this.getUpdate() as UpdateQuery<unknown> | null;
    if (!update || Array.isArray(update) || update.$inc?.[REVISION] !== undefined || update.$set?.[REVISION] !== undefined) return;
    this.setUpdate({ ...update, $inc: { ...update.$inc, [REVISION]: 1 } });
  });
}
