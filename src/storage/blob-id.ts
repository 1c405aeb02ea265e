/**
 * Blob ids as file names and URL segments.
 * @module
 */

/**
 * True when `id` is safe as one file name or URL path segment: letters, digits, `.`, `_`, `-`,
 * not starting with `.` or `-` (so never `.`, `..` or a hidden file), at most 255 bytes.
 * Nydus blob ids are 64 lowercase hex digits.
 */
export function isPlainBlobId(id: string): boolean {
  return id.length <= 255 && /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(id);
}
