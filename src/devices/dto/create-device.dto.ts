import { IsString, Length } from 'class-validator';
import { IsMyId } from '../device-key.js';

export class CreateDeviceDto {
  /**
   * The client's own identifier, unique: 1–128 letters, digits and `._:-`, never 24 hex
   * characters and never `count`, `findOne`, `exists` or `rel`. Usable wherever a device id is.
   * @example "thermostat-kitchen"
   */
  @IsMyId()
  myId: string;

  /**
   * The hardware identifier, unique.
   * @example "UID-0017-A3"
   */
  @IsString()
  @Length(1, 256)
  deviceUID: string;
}
