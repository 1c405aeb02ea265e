/**
 * Error classes with stable codes. Every error the project throws on purpose carries a `code`
 * (`ERR_*`) that callers and tests match on, and optionally an `errno` for the FUSE layer.
 * Messages read "Cannot <action>: <state>".
 * @module
 */

/** Options shared by every project error. */
export interface NydusErrorOptions {
  cause?: unknown;
  /** Positive errno (EIO = 5 …) the file system layer answers with. */
  errno?: number;
  /** File or entry the error is about. */
  path?: string;
  /** Byte offset in the input the error is about. */
  offset?: number;
}

/** Base of all project errors. */
export class NydusError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly path: string | undefined;
  readonly offset: number | undefined;

  constructor(code: string, message: string, options: NydusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.errno = options.errno;
    this.path = options.path;
    this.offset = options.offset;
  }
}

/** Malformed or unsupported on-disk data (bootstrap, blob, ToC, tar). */
export class FormatError extends NydusError {}

/** A failure reading or writing blobs through a backend or the local file system. */
export class BackendError extends NydusError {}

/** Bad command-line or configuration input. */
export class UsageError extends NydusError {}

/** True when `e` is a project error carrying `code`. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof NydusError && e.code === code;
}
