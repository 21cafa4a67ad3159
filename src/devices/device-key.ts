import { Types } from 'mongoose';
import { registerDecorator, type ValidationArguments, type ValidationOptions } from 'class-validator';
import { isObjectIdString } from '../common/pipes/parse-object-id.pipe.js';
import { describeKey } from '../relations/keys.js';

/** Route words under /devices that a myId must never shadow (DESIGN.md, Data). */
export const RESERVED_MY_IDS: readonly string[] = ['count', 'findOne', 'exists', 'rel'];
export const MY_ID_MAX_LENGTH = 128;
const MY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Why `value` cannot be a myId, or undefined when it can. */
export function myIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  if (!MY_ID.test(value)) return `must be 1–${MY_ID_MAX_LENGTH} characters of letters, digits and . _ : -`;
  if (isObjectIdString(value)) return 'must not be a 24-character hexadecimal string, which would read as an ObjectId';
  if (RESERVED_MY_IDS.includes(value)) return `must not be one of the route words ${RESERVED_MY_IDS.join(', ')}`;
  return undefined;
}

/**
 * A device as a client names it: a 24-hex value is an ObjectId, anything else a myId
 * (DESIGN.md, Device identifiers). Storage is always the ObjectId.
 */
export type DeviceKey = { readonly _id: Types.ObjectId } | { readonly myId: string };

export function parseDeviceKey(value: unknown): DeviceKey | undefined {
  if (isObjectIdString(value)) return { _id: new Types.ObjectId(value) };
  return myIdProblem(value) === undefined ? { myId: value as string } : undefined;
}

export const describeDeviceKey = describeKey;

/**
 * The same rule as one regular expression, for the OpenAPI document: a myId, which also
 * admits every ObjectId (24 hex characters are letters and digits), minus the route words.
 */
export const DEVICE_KEY_PATTERN = `^(?!(?:${RESERVED_MY_IDS.join('|')})$)${MY_ID.source.slice(1, -1)}$`;

export const DEVICE_ID_RULE = 'an ObjectId (24 hexadecimal characters) or a myId (1–128 characters of letters, digits and . _ : -)';

/** class-validator rule for a myId field, with the reason in its message. */
export function IsMyId(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isMyId',
      target: target.constructor,
      propertyName: propertyName as string,
      options,
      validator: {
        validate: (value: unknown) => myIdProblem(value) === undefined,
        defaultMessage: (args?: ValidationArguments) => `${args?.property} ${myIdProblem(args?.value)}`,
      },
    });
}
