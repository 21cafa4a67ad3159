import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { type HydratedDocument, Schema as MongooseSchema, type Types } from 'mongoose';
import { revision } from '../../common/schema/revision.plugin.js';
import { SCHEMA_OPTIONS } from '../../common/schema-options.js';
import { Device } from '../../devices/schemas/device.schema.js';

@Schema(SCHEMA_OPTIONS)
export class Account {
  _id: Types.ObjectId;

  @Prop({ type: String, required: true, minlength: 1, maxlength: 200 })
  name: string;

  /**
   * The relation: ObjectIds only (a myId in a request is resolved before it gets here), in
   * insertion order, no duplicates. Populated only on request.
   */
  @Prop({ type: [{ type: MongooseSchema.Types.ObjectId, ref: Device.name }], default: [] })
  deviceIds: Types.ObjectId[];

  createdAt: Date;
  updatedAt: Date;
}

export type AccountDocument = HydratedDocument<Account>;
export const AccountSchema = SchemaFactory.createForClass(Account);
AccountSchema.plugin(revision);

// Multikey: the device-deletion cleanup and the reverse lookup both query by one device id.
AccountSchema.index({ deviceIds: 1 });
