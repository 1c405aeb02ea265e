/**
 * A prefetch list as `nydusctl trace` and `nydus-snapshotter trace` print it: absolute UTF-8
 * paths, one a line, in the order the workload first read them. Blank lines are skipped;
 * repeated slashes and a trailing slash are dropped; a path listed twice keeps its first place.
 * @module
 */
import { UsageError } from '../util/errors.js';

/**
 * Parse `data` (the list's bytes or text); `where` names it in errors. Throws ERR_BAD_PREFETCH_LIST
 * naming the line of the first entry that is not an absolute path of valid UTF-8 without NUL
 * bytes or `.`/`..` components.
 */
export function parsePrefetchList(data: Uint8Array | string, where: string): string[] {
  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      throw new UsageError('ERR_BAD_PREFETCH_LIST', `Cannot read prefetch list ${where}: it is not UTF-8 text`, { path: where });
    }
  }
  const out: string[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, k) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim().length === 0) return;
    const bad = (why: string): UsageError => new UsageError('ERR_BAD_PREFETCH_LIST', `Cannot read prefetch list ${where}: line ${k + 1} ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)} ${why}`, { path: where });
    if (!line.startsWith('/')) throw bad('is not an absolute path');
    if (line.includes('\0')) throw bad('holds a NUL byte');
    const parts = line.split('/').filter((p) => p.length > 0);
    if (parts.some((p) => p === '.' || p === '..')) throw bad('has a "." or ".." component');
    const path = `/${parts.join('/')}`;
    if (seen.has(path)) return;
    seen.add(path);
    out.push(path);
  });
  return out;
}
