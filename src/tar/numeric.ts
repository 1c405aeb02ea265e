/**
 * Decoding of the numeric and string fields of tar headers and PAX records.
 * @module
 */

const utf8 = new TextDecoder('utf-8');

/** Decode bytes as UTF-8 (invalid sequences become U+FFFD). */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** Decode a NUL-terminated header string field (`len` bytes at `off`) as UTF-8. */
export function readCString(block: Uint8Array, off: number, len: number): string {
  const field = block.subarray(off, off + len);
  const nul = field.indexOf(0);
  return decodeUtf8(nul === -1 ? field : field.subarray(0, nul));
}

/**
 * Decode a tar numeric field: octal ASCII (leading spaces/NULs allowed, terminated by NUL or
 * space) or GNU base-256 (first byte 0x80 for positive, 0xff for negative two's complement).
 * Returns `undefined` when the field is malformed or its value is not a safe integer.
 * An all-NUL/space field is 0.
 */
export function readNumeric(block: Uint8Array, off: number, len: number): number | undefined {
  const first = block[off] ?? 0;
  if (first & 0x80) return readBase256(block, off, len);
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i] ?? 0;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    const c = block[i] ?? 0;
    if (c !== 0 && c !== 0x20) return undefined;
  }
  if (digits === 0) return 0;
  return Number.isSafeInteger(value) ? value : undefined;
}

function readBase256(block: Uint8Array, off: number, len: number): number | undefined {
  const first = block[off] ?? 0;
  const negative = (first & 0x40) !== 0;
  // Two's complement over the whole field, with the marker bit folded into the sign.
  let v = BigInt(negative ? first | 0x80 : first & 0x7f);
  for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i] ?? 0);
  if (negative) v -= 1n << BigInt(len * 8);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return undefined;
  return Number(v);
}

/**
 * Parse a non-negative decimal integer (PAX values, sparse maps). Returns `undefined` when `s`
 * is empty, contains anything but digits or is not a safe integer.
 */
export function parseDecimal(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const v = Number(s);
  return Number.isSafeInteger(v) ? v : undefined;
}

/**
 * Parse a PAX time value (`[-]seconds[.fraction]`) into whole seconds (floored) and
 * nanoseconds in [0, 1e9). Returns `undefined` when malformed.
 */
export function parsePaxTime(s: string): { sec: number; nsec: number } | undefined {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(s);
  if (!m) return undefined;
  const whole = Number(m[2]);
  if (!Number.isSafeInteger(whole)) return undefined;
  const frac = ((m[3] ?? '') + '000000000').slice(0, 9);
  let nsec = Number(frac);
  let sec = whole;
  if (m[1] === '-') {
    sec = -whole;
    if (nsec > 0) {
      sec -= 1;
      nsec = 1e9 - nsec;
    }
  }
  return { sec, nsec };
}
