import { modelShape } from '../common/schema/model-shape.js';
import { referenceReader } from '../relations/keys.js';
import { parseDeviceKey } from './device-key.js';
import { DeviceSchema } from './schemas/device.schema.js';

/** Devices as the API shows and filters them, read from the schema; `_id` also takes a myId. */
export const DEVICE = modelShape(DeviceSchema, {
  reference: referenceReader(parseDeviceKey, 'a device ObjectId or myId'),
  referenceFields: ['_id'],
});
