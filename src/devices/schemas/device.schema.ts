import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { type Connection, type HydratedDocument, type Query, type Types } from 'mongoose';
import { SCHEMA_OPTIONS } from '../../common/schema-options.js';
import { myIdProblem } from '../device-key.js';

@Schema(SCHEMA_OPTIONS)
export class Device {
  _id: Types.ObjectId;

  @Prop({
    type: String,
    required: true,
    unique: true,
    validate: {
      validator: (value: unknown) => myIdProblem(value) === undefined,
      message: (props: { value: unknown }) => `myId ${myIdProblem(props.value)}`,
    },
  })
  myId: string;

  @Prop({ type: String, required: true, unique: true, minlength: 1, maxlength: 256 })
  deviceUID: string;

  createdAt: Date;
  updatedAt: Date;
}

export type DeviceDocument = HydratedDocument<Device>;
export const DeviceSchema = SchemaFactory.createForClass(Device);

/**
 * Every array path, in every model on the connection, that references devices. Found from the
 * schemas (`ref: 'Device'`) rather than imported, so devices/ does not depend on the models
 * that point at it and a new referencing model is cleaned up without touching this file.
 */
function referencingPaths(connection: Connection): Array<{ model: string; path: string }> {
  const found: Array<{ model: string; path: string }> = [];
  for (const name of connection.modelNames()) {
    connection.model(name).schema.eachPath((path, type) => {
      const element = (type as { embeddedSchemaType?: { options?: { ref?: unknown } } }).embeddedSchemaType;
      if (type.instance === 'Array' && element?.options?.ref === Device.name) found.push({ model: name, path });
    });
  }
  return found;
}

/** One `updateMany` per referencing path, however many documents hold the ids. */
async function pullReferences(connection: Connection, ids: Types.ObjectId[]): Promise<void> {
  if (ids.length === 0) return;
  await Promise.all(
    referencingPaths(connection).map(({ model, path }) => {
      const match = ids.length === 1 ? ids[0] : { $in: ids };
      return connection
        .model(model)
        .updateMany({ [path]: match }, { $pull: { [path]: match } })
        .exec();
    }),
  );
}

// The cleanup (DESIGN.md, Invariant 1) lives here, on the schema, so that no delete path of the
// service can bypass it: findOneAndDelete (findByIdAndDelete too), query deleteOne/deleteMany,
// and document deleteOne. Query deletes collect their ids first, as the deleted documents are
// gone by the time a post hook runs.
type DeviceQuery = Query<unknown, Device>;
const idsToPull = new WeakMap<DeviceQuery, Types.ObjectId[]>();

DeviceSchema.post<DeviceQuery>('findOneAndDelete', async function (deleted) {
  const id = (deleted as { _id?: Types.ObjectId } | null)?._id;
  if (id) await pullReferences(this.model.db, [id]);
});

DeviceSchema.pre('deleteOne', { document: false, query: true }, async function (this: DeviceQuery) {
  const doomed = await this.model.findOne(this.getFilter()).select('_id').lean<{ _id: Types.ObjectId }>().exec();
  idsToPull.set(this, doomed ? [doomed._id] : []);
});

DeviceSchema.pre('deleteMany', async function (this: DeviceQuery) {
  const doomed = await this.model.find(this.getFilter()).select('_id').lean<Array<{ _id: Types.ObjectId }>>().exec();
  idsToPull.set(
    this,
    doomed.map((device) => device._id),
  );
});

for (const operation of ['deleteOne', 'deleteMany'] as const) {
  DeviceSchema.post(operation, { document: false, query: true }, async function (this: DeviceQuery) {
    await pullReferences(this.model.db, idsToPull.get(this) ?? []);
  });
}

DeviceSchema.post('deleteOne', { document: true, query: false }, async function (this: DeviceDocument) {
  await pullReferences(this.db, [this._id]);
});
