export class CountDto {
  /** @example 1 */
  count: number;
}
