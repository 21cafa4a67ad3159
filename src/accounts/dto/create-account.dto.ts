import { IsArray, IsString, Length, ValidateIf } from 'class-validator';

export class CreateAccountDto {
  /** @example "Kitchen" */
  @IsString()
  @Length(1, 200)
  name: string;

  /**
   * Devices to reference, in order: each an ObjectId or a myId, all existing, none twice.
   * Stored as ObjectIds.
   * @example ["thermostat-kitchen", "6650c0ffee0000000000d001"]
   */
  @ValidateIf((_dto, value) => value !== undefined)
  @IsArray()
  @IsString({ each: true })
  deviceIds?: string[];
}
