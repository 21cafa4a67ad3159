import { type FilterSpec, MyIdRef } from '../common/filter/filter.types.js';
import { parseDeviceKey } from './device-key.js';

/** A device id in a filter: its ObjectId, or its myId for the service to resolve. */
export function deviceRef(value: unknown) {
  const key = parseDeviceKey(value);
  if (!key) return undefined;
  return '_id' in key ? key._id : new MyIdRef(key.myId);
}

/** What the filter language may touch on devices. */
export const DEVICE_FILTER: FilterSpec = {
  fields: { _id: 'deviceId', myId: 'string', deviceUID: 'string', createdAt: 'date', updatedAt: 'date' },
  deviceRef,
};
