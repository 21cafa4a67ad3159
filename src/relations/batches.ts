/**
 * Ids per `$in`. mongo-java-server matches `$in` by walking the list for every candidate, so a
 * list of n costs n² there; batches keep every read and write of a long list linear. Real
 * engines answer either from an index, and a list of up to this many costs one round trip.
 */
export const IN_BATCH = 200;

/** Documents written per bulk write. */
export const WRITE_BATCH = 1000;

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
