/**
 * A projection that also fetches the fields the service needs (to map included documents,
 * say), with the list of those to remove again before answering, so `fields` is honoured
 * exactly without breaking the relation.
 */
export function projectionWith(
  fields: Record<string, 0 | 1> | undefined,
  required: readonly string[],
): { projection: Record<string, 0 | 1> | undefined; strip: string[] } {
  if (!fields) return { projection: undefined, strip: [] };
  const projection = { ...fields };
  const strip: string[] = [];
  const inclusive = Object.entries(fields).some(([field, flag]) => field !== '_id' && flag === 1);
  for (const field of required) {
    if (projection[field] === 0) {
      delete projection[field];
      strip.push(field);
    } else if (inclusive && field !== '_id' && projection[field] !== 1) {
      projection[field] = 1;
      strip.push(field);
    }
  }
  return { projection, strip };
}

export function without<T extends object>(document: T, fields: readonly string[]): T {
  if (fields.length === 0) return document;
  const copy = { ...document } as Record<string, unknown>;
  for (const field of fields) delete copy[field];
  return copy as T;
}
