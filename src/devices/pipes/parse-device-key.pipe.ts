import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { badRequest } from '../../common/errors.js';
import { DEVICE_ID_RULE, type DeviceKey, parseDeviceKey } from '../device-key.js';

/** Accepts a device's ObjectId or its myId wherever a path names a device. */
@Injectable()
export class ParseDeviceKeyPipe implements PipeTransform<string, DeviceKey> {
  transform(value: string, metadata: ArgumentMetadata): DeviceKey {
    const key = parseDeviceKey(value);
    if (!key) {
      const path = metadata.data ?? 'id';
      const message = `${path} must be ${DEVICE_ID_RULE}`;
      throw badRequest(message, [{ path, code: 'invalid_device_id', message }]);
    }
    return key;
  }
}
