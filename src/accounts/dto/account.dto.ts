import { ApiProperty } from '@nestjs/swagger';
import { type Types } from 'mongoose';
import { DeviceDto } from '../../devices/dto/device.dto.js';

/** An account as the API returns it. */
export class AccountDto {
  // ObjectIds are returned as stored and serialise to hex strings.
  @ApiProperty({ type: String, example: '6650c0ffee0000000000a001' })
  _id: Types.ObjectId;

  /** @example "Kitchen" */
  name: string;

  /** The referenced devices' ObjectIds, in insertion order. */
  @ApiProperty({ type: [String], example: ['6650c0ffee0000000000d001'] })
  deviceIds: Types.ObjectId[];

  createdAt: Date;
  updatedAt: Date;

  /** With `include=devices`: the referenced devices, in `deviceIds` order. */
  devices?: DeviceDto[];
}
