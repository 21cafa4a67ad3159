import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from '../../common/errors.js';
import { type ErrorCase, malformedParam } from '../../common/openapi/error-example.js';
import { DEVICE_ID_RULE, type DeviceKey, parseDeviceKey } from '../device-key.js';

/** The 400 for a malformed device id at `path`, as the pipe throws it and the docs show it. */
export function malformedDeviceKey(path: string): ErrorCase {
  return malformedParam(path, 'invalid_device_id', DEVICE_ID_RULE);
}

/** Accepts a device's ObjectId or its myId wherever a path names a device. */
@Injectable()
export class ParseDeviceKeyPipe implements PipeTransform<string, DeviceKey> {
  transform(value: string, metadata: ArgumentMetadata): DeviceKey {
    const key = parseDeviceKey(value);
    if (!key) {
      const { message, details } = malformedDeviceKey(metadata.data ?? 'id');
      throw badRequest(message, details);
    }
    return key;
  }
}
