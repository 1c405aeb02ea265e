/**
 * Run an async function over items with at most `limit` calls in flight, keeping results in item
 * order. The first failure rejects the whole, and no new item starts after it.
 * @module
 */

/** `fn` over `items`, at most `limit` at once; results in item order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (t: T, k: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (!failed && next < items.length) {
      const k = next++;
      try {
        out[k] = await fn(items[k] as T, k);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  });
  await Promise.all(workers);
  return out;
}
