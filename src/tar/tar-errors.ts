/**
 * Constructors for the errors the tar reader throws, so that every message names the entry
 * path (when known) and the offset in the tar stream.
 * @module
 */
import { FormatError } from '../util/errors.js';

/** "Cannot read tar entry "p" at offset N" or "Cannot read tar header at offset N". */
function subject(path: string | undefined, offset: number): string {
  return path === undefined ? `Cannot read tar header at offset ${offset}` : `Cannot read tar entry "${path}" at offset ${offset}`;
}

/** A FormatError about the entry (or header) at `offset`. */
export function tarError(code: string, path: string | undefined, offset: number, state: string): FormatError {
  return new FormatError(code, `${subject(path, offset)}: ${state}`, path === undefined ? { offset } : { path, offset });
}

/** ERR_TRUNCATED: the input ended `got` bytes into a `size`-byte `what` of the entry. */
export function truncatedError(path: string | undefined, offset: number, got: number, size: number, what: string): FormatError {
  return tarError('ERR_TRUNCATED', path, offset, `the archive ends ${got} bytes into a ${size}-byte ${what}`);
}

/** ERR_TAR_HEADER: a numeric header field the entry needs is malformed. */
export function badFieldError(path: string, offset: number, field: string): FormatError {
  return tarError('ERR_TAR_HEADER', path, offset, `the ${field} field is not a valid number`);
}
