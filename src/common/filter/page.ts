export interface Page<T> {
  items: T[];
  /** Every match, ignoring limit and skip (X-Total-Count). */
  total: number;
}

/**
 * A page and the total behind it, counting only when the page cannot tell: one more row than
 * the page is fetched, and if it does not come, the total is what was skipped plus what came.
 * The usual short list (a few related documents, say) costs one query, not two.
 */
export async function pageOf<T>(
  fetch: (limit: number) => Promise<T[]>,
  count: () => Promise<number>,
  skip: number,
  limit: number,
): Promise<Page<T>> {
  const rows = await fetch(limit + 1);
  if (rows.length <= limit && (rows.length > 0 || skip === 0)) return { items: rows, total: skip + rows.length };
  return { items: rows.slice(0, limit), total: await count() };
}
