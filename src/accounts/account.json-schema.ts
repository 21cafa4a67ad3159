import { arrayOf, dateTimeJson, objectIdJson } from '../common/serialization/response-schema.js';
import { DEVICE_JSON } from '../devices/device.json-schema.js';

/** An account as AccountDto describes it, for the response serializer. */
export const ACCOUNT_JSON = {
  type: 'object',
  properties: {
    _id: objectIdJson,
    name: { type: 'string' },
    deviceIds: arrayOf(objectIdJson),
    createdAt: dateTimeJson,
    updatedAt: dateTimeJson,
    devices: arrayOf(DEVICE_JSON),
  },
} as const;
