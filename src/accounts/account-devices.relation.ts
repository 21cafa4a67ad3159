import { Device } from '../devices/schemas/device.schema.js';
import { type ReferencesManyDefinition } from '../relations/references-many.definition.js';
import { Account } from './schemas/account.schema.js';

/** An account's `deviceIds`: the devices it references, by ObjectId or myId, at most MAX_DEVICES_PER_ACCOUNT. */
export const ACCOUNT_DEVICES: ReferencesManyDefinition = {
  name: 'devices',
  source: Account.name,
  target: Device.name,
  foreignKey: 'deviceIds',
  alternateKey: 'myId',
  maxSize: (config) => config.maxDevicesPerAccount,
};
