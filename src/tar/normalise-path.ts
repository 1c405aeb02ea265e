/**
 * Lexical normalisation of tar entry paths, so that no entry can name a file outside the
 * archive root.
 * @module
 */

/** Paths that are already normal match none of: leading or trailing '/', '//', a '.' or '..' component. */
const NEEDS_WORK = /^\/|\/$|\/\/|(?:^|\/)\.\.?(?:\/|$)/;

/**
 * Normalise a tar entry path: strip leading `/` and `./`, collapse `//`, drop `.` components,
 * resolve `..` lexically while clamping at the root, and drop any trailing `/`.
 * The root itself (`.`, `./`, `/`, `..`) becomes `''`.
 *
 * @example normaliseTarPath('../../etc/passwd') === 'etc/passwd'
 * @example normaliseTarPath('/abs//x/./y/') === 'abs/x/y'
 */
export function normaliseTarPath(p: string): string {
  if (!NEEDS_WORK.test(p)) return p;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}
