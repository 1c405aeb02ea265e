/**
 * The HTTP Content-Range header of a ranged response.
 * @module
 */

/** Parse `bytes a-b/total` (total may be `*`), also `bytes * /total`; undefined when absent or malformed. */
export function parseContentRange(v: string | undefined): { start?: number; end?: number; total?: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return undefined;
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]), end: Number(m[2]) } : {}),
    ...(m[3] !== '*' ? { total: Number(m[3]) } : {}),
  };
}
