import { IsIn, IsOptional } from 'class-validator';

export class AccountQueryDto {
  /** `devices` adds a `devices` array with the referenced devices, in `deviceIds` order. */
  @IsOptional()
  @IsIn(['devices'])
  include?: 'devices';
}
