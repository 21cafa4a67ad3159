export class ExistsDto {
  exists: boolean;
}
