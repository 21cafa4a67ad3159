import { applyDecorators, Query } from '@nestjs/common';
import { ApiQuery, type ExampleObject } from '@nestjs/swagger';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { ObjectIdParam } from '../common/decorators/object-id-param.decorator.js';
import { DocumentedParameter } from '../common/decorators/path-param.decorator.js';
import { type ErrorCase, fieldError } from '../common/openapi/error-example.js';
import { DEVICE_ID_RULE, DEVICE_KEY_PATTERN, parseDeviceKey } from '../devices/device-key.js';
import { EXAMPLE_DEVICE_OBJECT_ID, EXAMPLE_MY_ID } from '../devices/devices.openapi.js';
import { malformedPosition, ParsePositionPipe } from '../relations/position.js';
import { RelationField } from '../relations/relation-field.interceptor.js';

/** The OpenAPI side of accounts: how routes document an account id, filters and errors. */

export const EXAMPLE_ACCOUNT_ID = '6650c0ffee0000000000a001';

/** `:id` of an account: an ObjectId, parsed to one (400 when malformed) and documented. */
export const AccountIdParam = () => ObjectIdParam('id', 'The account ObjectId', EXAMPLE_ACCOUNT_ID);

/** An account as error messages name it (If-Match's 412). */
export const ACCOUNT_NAMED = `Account ${EXAMPLE_ACCOUNT_ID}`;

export const ACCOUNT_NOT_FOUND: ErrorCase = { status: 404, name: 'unknownAccount', message: `Account ${EXAMPLE_ACCOUNT_ID} not found` };
export const NAME_EMPTY = fieldError(400, 'nameEmpty', 'name', 'isLength', 'name must be longer than or equal to 1 characters');
export const NO_ACCOUNT_MATCHES: ErrorCase = { status: 404, name: 'noMatch', message: 'No account matches the filter' };
export const DEVICE_NOT_LINKED: ErrorCase = {
  status: 404,
  name: 'notLinked',
  message: `Device ${EXAMPLE_MY_ID} is not linked to account ${EXAMPLE_ACCOUNT_ID}`,
};
/** The 422 for a list of device ids at `field` (`deviceIds` in accounts, `ids` in the relation). */
export function unknownDevices(field: string): ErrorCase {
  const unknown = `${field}[1]: no device lamp-hall`;
  const twice = `${field}[2]: device ${EXAMPLE_MY_ID} is listed more than once`;
  return {
    status: 422,
    name: 'unknownDevices',
    message: `${unknown}; ${twice}`,
    details: [
      { path: `${field}[1]`, code: 'unknown_device', message: unknown },
      { path: `${field}[2]`, code: 'duplicate_device', message: twice },
    ],
  };
}

/** The 422 past MAX_DEVICES_PER_ACCOUNT, naming `path` (the list, or `fk` for one link). */
export function tooManyDevices(path: string): ErrorCase {
  return fieldError(422, 'tooManyDevices', path, 'too_many_devices', `${path}: an account references at most 10000 devices`);
}

/**
 * A route whose body lists devices to reference in `field`: the relation's rules (every id known,
 * none twice, within the limit) are answered naming the field, and documented.
 */
export function ListsDevices(field: 'deviceIds' | 'ids'): MethodDecorator {
  return applyDecorators(ApiErrors(unknownDevices(field), tooManyDevices(field)), RelationField(field));
}

const ANCHOR_NOT_LINKED = fieldError(
  422,
  'anchorNotLinked',
  'position',
  'anchor_not_linked',
  `position: device lamp-hall is not linked to account ${EXAMPLE_ACCOUNT_ID}`,
);

/**
 * `?position=` of a link: where the devices go in `deviceIds`, parsed (400 when malformed) and
 * documented, with the 422 of an anchor that is not linked.
 */
export function DevicePositionQuery(): ParameterDecorator {
  return DocumentedParameter(
    Query('position', new ParsePositionPipe(parseDeviceKey, DEVICE_ID_RULE)),
    ApiQuery({
      name: 'position',
      required: false,
      description:
        'Where the devices go in deviceIds: `start`, `end`, or `before:<device>` / `after:<device>` next to a linked device ' +
        '(ObjectId or myId). Devices already linked move there. Without it, new devices are appended and linked ones stay where they are.',
      schema: { type: 'string', pattern: `^(?:start|end|(?:before|after):${DEVICE_KEY_PATTERN.slice(1, -1)})$` },
      // The first example is empty: Swagger UI fills a parameter in with it when trying a route.
      examples: {
        none: { summary: 'Not given: new devices at the end, linked ones where they are', value: '' },
        start: { summary: 'First', value: 'start' },
        before: { summary: 'Just before lamp-hall', value: 'before:lamp-hall' },
        after: { summary: 'Just after a device named by ObjectId', value: `after:${EXAMPLE_DEVICE_OBJECT_ID}` },
      },
    }),
    ApiErrors(malformedPosition('position', DEVICE_ID_RULE), ANCHOR_NOT_LINKED),
  );
}

export const ACCOUNT_FILTER_EXAMPLES: Record<string, ExampleObject> = {
  all: { summary: 'No filter: the first 100, in creation order', value: '' },
  withDevices: { summary: 'Each with its devices, in deviceIds order', value: '{"include":"devices"}' },
  holdingDevice: { summary: 'The accounts holding a device (ObjectId or myId)', value: `{"where":{"deviceIds":"${EXAMPLE_MY_ID}"}}` },
  byName: { summary: 'Named like "Kit…", newest first', value: '{"where":{"name":{"like":"^Kit"}},"order":"createdAt DESC","limit":20}' },
  includeScope: {
    summary: 'Only the myId of devices whose myId starts with "therm"',
    value: '{"include":{"relation":"devices","scope":{"where":{"myId":{"like":"^therm"}},"fields":{"myId":true}}}}',
  },
};

/** For reading one account, where only `fields` and `include` apply. */
export const ACCOUNT_READ_EXAMPLES: Record<string, ExampleObject> = {
  whole: { summary: 'The whole account', value: '' },
  withDevices: ACCOUNT_FILTER_EXAMPLES.withDevices,
  someFields: { summary: 'Only its name', value: '{"fields":{"name":true}}' },
  includeScope: ACCOUNT_FILTER_EXAMPLES.includeScope,
};

/** For updateAll, whose where is required (or all=true). */
export const ACCOUNT_UPDATE_WHERE_EXAMPLES: Record<string, ExampleObject> = {
  byName: { summary: 'The accounts named "Kitchen"', value: '{"name":"Kitchen"}' },
  holdingDevice: { summary: 'The accounts holding a device (ObjectId or myId)', value: `{"deviceIds":"${EXAMPLE_MY_ID}"}` },
};

export const ACCOUNT_WHERE_EXAMPLES: Record<string, ExampleObject> = {
  all: { summary: 'Every account', value: '' },
  holdingDevice: { summary: 'The accounts holding a device', value: `{"deviceIds":"${EXAMPLE_DEVICE_OBJECT_ID}"}` },
  byName: { summary: 'Named like "Kit…"', value: '{"name":{"like":"^Kit"}}' },
};
