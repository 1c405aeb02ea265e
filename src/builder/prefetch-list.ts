/**
 * A prefetch list as `nydusctl trace` and `nydus-snapshotter trace` print it: absolute UTF-8
 * paths, one a line, in the order the workload first read them. Blank lines and white space
 * around a path are skipped; repeated slashes and a trailing slash are dropped; a path listed
 * twice keeps its first place.
 * @module
 */
import { NydusError, UsageError } from '../util/errors.js';

/** Limits and error of {@link parsePrefetchList}. */
export interface PrefetchListOptions {
  /** Most paths (default: no limit). */
  maxPaths?: number;
  /** Longest path in characters (default: no limit). */
  maxPathLength?: number;
  /** The error thrown, from its message (default: UsageError ERR_BAD_PREFETCH_LIST). */
  error?: (message: string) => NydusError;
}

/**
 * Parse `data` (the list's bytes or text); `where` names it in errors. Throws (ERR_BAD_PREFETCH_LIST
 * by default) naming the line of the first entry that is not an absolute path of valid UTF-8
 * without NUL bytes or `.`/`..` components, or that breaks a limit.
 */
export function parsePrefetchList(data: Uint8Array | string, where: string, options: PrefetchListOptions = {}): string[] {
  const fail = options.error ?? ((message: string): NydusError => new UsageError('ERR_BAD_PREFETCH_LIST', message, { path: where }));
  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    } catch {
      throw fail(`Cannot read prefetch list ${where}: it is not UTF-8 text`);
    }
  }
  const out: string[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, k) => {
    // White space around a path (a CRLF list, an indented one) is not part of it.
    const line = raw.trim();
    if (line.length === 0) return;
    const bad = (why: string): NydusError => fail(`Cannot read prefetch list ${where}: line ${k + 1} ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)} ${why}`);
    if (!line.startsWith('/')) throw bad('is not an absolute path');
    if (line.includes('\0')) throw bad('holds a NUL byte');
    const parts = line.split('/').filter((p) => p.length > 0);
    if (parts.some((p) => p === '.' || p === '..')) throw bad('has a "." or ".." component');
    if (options.maxPathLength !== undefined && line.length > options.maxPathLength) throw bad(`is longer than ${options.maxPathLength} characters`);
    const path = `/${parts.join('/')}`;
    if (seen.has(path)) return;
    seen.add(path);
    out.push(path);
    if (options.maxPaths !== undefined && out.length > options.maxPaths) throw fail(`Cannot read prefetch list ${where}: it lists more than ${options.maxPaths} paths`);
  });
  return out;
}
