/**
 * Ids per `$in`. mongo-java-server matches `$in` by walking the list for every candidate, so a
 * list of n costs n² there; batches keep every read and write of a long list linear. Real
 * engines answer either from an index, and a list of up to this many costs one round trip,
 * provided the reply may hold the whole batch: a cursor's first reply holds 101 documents
 * unless asked for more, and the rest would take a getMore (IN_REPLY).
 */
export const IN_BATCH = 200;

/** The first reply's size for a read of one batch: all of it, and room to see that it ended. */
export const IN_REPLY = IN_BATCH + 1;

/** Documents written per bulk write. */
export const WRITE_BATCH = 1000;

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
