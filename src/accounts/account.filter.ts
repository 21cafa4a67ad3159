import { type FilterSpec } from '../common/filter/filter.types.js';
import { DEVICE_FILTER, deviceRef } from '../devices/device.filter.js';

/** What the filter language may touch on accounts, and the relation it may include. */
export const ACCOUNT_FILTER: FilterSpec = {
  fields: { _id: 'objectId', name: 'string', deviceIds: 'deviceId', createdAt: 'date', updatedAt: 'date' },
  relations: { devices: DEVICE_FILTER },
  deviceRef,
};
