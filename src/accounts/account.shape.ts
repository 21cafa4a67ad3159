import { modelShape } from '../common/schema/model-shape.js';
import { parseDeviceKey } from '../devices/device-key.js';
import { DEVICE } from '../devices/device.shape.js';
import { referenceReader } from '../relations/keys.js';
import { AccountSchema } from './schemas/account.schema.js';

/** Accounts as the API shows and filters them, read from the schema; `deviceIds` take myIds too, `devices` can be included. */
export const ACCOUNT = modelShape(AccountSchema, {
  reference: referenceReader(parseDeviceKey, 'a device ObjectId or myId'),
  relations: { devices: DEVICE },
});
