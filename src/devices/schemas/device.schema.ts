import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { type HydratedDocument, type Types } from 'mongoose';
import { revision } from '../../common/schema/revision.plugin.js';
import { SCHEMA_OPTIONS } from '../../common/schema-options.js';
import { referencesManyTarget } from '../../relations/references-many.js';
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
DeviceSchema.plugin(revision);

// A relation target (Accounts' deviceIds name devices): every deletion of a device, whatever
// its path, marks it, pulls its id from every account and then removes it, so no id dangles
// even if the process dies half way, and reads never show a device being deleted.
DeviceSchema.plugin(referencesManyTarget);
