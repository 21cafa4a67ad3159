import { type ExampleObject } from '@nestjs/swagger';
import { PathParam } from '../common/decorators/path-param.decorator.js';
import { type ErrorCase, fieldError } from '../common/openapi/error-example.js';
import { DEVICE_KEY_PATTERN, MY_ID_MAX_LENGTH } from './device-key.js';
import { malformedDeviceKey, ParseDeviceKeyPipe } from './pipes/parse-device-key.pipe.js';

/** The OpenAPI side of devices: how routes document a device id, filters and errors. */

export const EXAMPLE_DEVICE_OBJECT_ID = '6650c0ffee0000000000d001';
export const EXAMPLE_MY_ID = 'thermostat-kitchen';

/**
 * A path parameter naming a device by its ObjectId or its myId (DESIGN.md, Device
 * identifiers), parsed to a `DeviceKey` (400 when it is neither) and documented.
 */
export function DeviceKeyParam(name: 'id' | 'fk'): ParameterDecorator {
  return PathParam(name, ParseDeviceKeyPipe, {
    description:
      'The device: its myId, or its ObjectId (24 hexadecimal characters). A myId is 1–128 letters, digits and `._:-`, ' +
      'never 24 hexadecimal characters and never `count`, `findOne`, `exists` or `rel`.',
    schema: { type: 'string', pattern: DEVICE_KEY_PATTERN, minLength: 1, maxLength: MY_ID_MAX_LENGTH },
    examples: {
      myId: { summary: 'By myId', value: EXAMPLE_MY_ID },
      objectId: { summary: 'By ObjectId', value: EXAMPLE_DEVICE_OBJECT_ID },
    },
    malformed: malformedDeviceKey(name),
  });
}

export const DEVICE_NOT_FOUND: ErrorCase = { status: 404, name: 'unknownDevice', message: `Device ${EXAMPLE_MY_ID} not found` };
export const NO_DEVICE_MATCHES: ErrorCase = { status: 404, name: 'noMatch', message: 'No device matches the filter' };
export const MY_ID_RESERVED = fieldError(
  400,
  'myIdReserved',
  'myId',
  'isMyId',
  'myId must not be one of the route words count, findOne, exists, rel',
);
export const MY_ID_TAKEN = fieldError(409, 'myIdTaken', 'myId', 'duplicate', 'myId is already taken');
export const MY_ID_ON_MANY = fieldError(
  409,
  'myIdOnMany',
  'myId',
  'duplicate',
  'myId: more than one device matches where, and a myId can be given to one device only',
);

export const DEVICE_FILTER_EXAMPLES: Record<string, ExampleObject> = {
  all: { summary: 'No filter: the first 100, in creation order', value: '' },
  byMyIdPrefix: {
    summary: 'myId starting with "therm", newest first',
    value: '{"where":{"myId":{"like":"^therm"}},"order":"createdAt DESC"}',
  },
  someFields: { summary: 'Only myId and deviceUID', value: '{"fields":{"myId":true,"deviceUID":true}}' },
  page: { summary: 'The third page of 20', value: '{"order":"myId ASC","limit":20,"skip":40}' },
};

/** For reading one device, where only `fields` applies. */
export const DEVICE_READ_EXAMPLES: Record<string, ExampleObject> = {
  whole: { summary: 'The whole device', value: '' },
  someFields: DEVICE_FILTER_EXAMPLES.someFields,
};

/** For updateAll, whose where is required (or all=true). */
export const DEVICE_UPDATE_WHERE_EXAMPLES: Record<string, ExampleObject> = {
  byMyId: { summary: 'The device whose myId is "thermostat-kitchen"', value: `{"myId":"${EXAMPLE_MY_ID}"}` },
  byUidPrefix: { summary: 'The devices whose deviceUID starts with "UID-0017"', value: '{"deviceUID":{"like":"^UID-0017"}}' },
};

export const DEVICE_WHERE_EXAMPLES: Record<string, ExampleObject> = {
  all: { summary: 'Every device', value: '' },
  byMyIdPrefix: { summary: 'myId starting with "therm"', value: '{"myId":{"like":"^therm"}}' },
  createdSince: { summary: 'Created since a date', value: '{"createdAt":{"gte":"2026-01-01T00:00:00.000Z"}}' },
};
