import { ArrayMaxSize, IsArray, IsString } from 'class-validator';

export class DeviceIdsDto {
  /**
   * Devices, each an ObjectId or a myId; all must exist, none twice.
   * @example ["thermostat-kitchen", "6650c0ffee0000000000d001"]
   */
  @IsArray()
  @ArrayMaxSize(100000)
  @IsString({ each: true })
  ids: string[];
}
