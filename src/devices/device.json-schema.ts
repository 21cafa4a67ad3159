import { dateTimeJson, objectIdJson } from '../common/serialization/response-schema.js';

/** A device as DeviceDto describes it, for the response serializer. */
export const DEVICE_JSON = {
  type: 'object',
  properties: {
    _id: objectIdJson,
    myId: { type: 'string' },
    deviceUID: { type: 'string' },
    createdAt: dateTimeJson,
    updatedAt: dateTimeJson,
  },
} as const;
