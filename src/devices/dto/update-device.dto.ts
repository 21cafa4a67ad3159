import { PartialType } from '@nestjs/swagger';
import { CreateDeviceDto } from './create-device.dto.js';

// A field may be left out, but not set to null: null is validated like any other value.
export class UpdateDeviceDto extends PartialType(CreateDeviceDto, { skipNullProperties: false }) {}
