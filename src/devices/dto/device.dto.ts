import { ApiProperty } from '@nestjs/swagger';
import { type Types } from 'mongoose';

/** A device as the API returns it. */
export class DeviceDto {
  // Typed as the stored ObjectId so lean reads are returned as they are; it serialises to
  // its hex string, which is what the schema says.
  @ApiProperty({ type: String, example: '6650c0ffee0000000000d001' })
  _id: Types.ObjectId;

  /** @example "thermostat-kitchen" */
  myId: string;

  /** @example "UID-0017-A3" */
  deviceUID: string;

  createdAt: Date;
  updatedAt: Date;
}
