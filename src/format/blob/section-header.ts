/**
 * The 512-byte GNU tar header Nydus writes *after* each blob section ("reverse tar"), naming
 * the section and its size: regular file, all other numeric fields left as zero bytes.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { decodeCString } from '../../util/bytes.js';

/** Size of one header. */
export const SECTION_HEADER_SIZE = 512;

function writeOctal(buf: Uint8Array, off: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new RangeError(`Cannot encode tar number ${value} in ${width} bytes`);
  buf.set(Buffer.from(digits, 'ascii'), off);
  buf[off + width - 1] = 0;
}

/** Encode a header naming a section of `size` bytes. */
export function encodeSectionHeader(name: string, size: number): Uint8Array {
  const h = new Uint8Array(SECTION_HEADER_SIZE);
  h.set(Buffer.from(name, 'ascii'), 0);
  if (size < 8 ** 11) {
    writeOctal(h, 124, 12, size);
  } else {
    h[124] = 0x80;
    new DataView(h.buffer).setBigUint64(128, BigInt(size), false);
  }
  writeOctal(h, 136, 12, 0); // mtime
  h[156] = 0x30; // '0': regular file
  h.set(Buffer.from('ustar  \0', 'latin1'), 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  writeOctal(h, 148, 8, sum);
  return h;
}

/** Decode a section header: its name and size. Checks the checksum. */
export function decodeSectionHeader(h: Uint8Array, offset: number): { name: string; size: number } {
  if (h.length < SECTION_HEADER_SIZE) throw new FormatError('ERR_TRUNCATED', `Cannot read blob section header at ${offset}: short read`, { offset });
  let sum = 0;
  for (let i = 0; i < SECTION_HEADER_SIZE; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  const field = Buffer.from(h.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) throw new FormatError('ERR_BAD_TOC', `Cannot read blob section header at ${offset}: the checksum field is not an octal number`, { offset });
  const stored = parseInt(field, 8);
  if (stored !== sum) throw new FormatError('ERR_BAD_TOC', `Cannot read blob section header at ${offset}: checksum ${stored} != ${sum}`, { offset });
  let size: number;
  if (((h[124] as number) & 0x80) !== 0) {
    size = Number(new DataView(h.buffer, h.byteOffset, h.byteLength).getBigUint64(128, false));
  } else {
    size = parseInt(Buffer.from(h.subarray(124, 136)).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
  }
  return { name: decodeCString(h, 0, 100), size };
}
