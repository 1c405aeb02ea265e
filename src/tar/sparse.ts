/**
 * GNU sparse file maps: the old GNU header form (type 'S'), the PAX 1.0 map stored at the
 * start of the data, and validation of a map against the stored data.
 * @module
 */
import { FormatError } from '../util/errors.js';
import { readNumeric } from './numeric.js';

/** A stretch of file data: `length` bytes at logical `offset`; everything else is a hole. */
export interface SparseRun {
  offset: number;
  length: number;
}

/** The entry a sparse map belongs to, for error messages. */
export interface SparseContext {
  path: string;
  /** Offset of the entry's first header in the tar stream. */
  offset: number;
}

function sparseError(ctx: SparseContext, state: string): FormatError {
  return new FormatError('ERR_TAR_SPARSE', `Cannot read sparse map of tar entry "${ctx.path}" at offset ${ctx.offset}: ${state}`, {
    path: ctx.path,
    offset: ctx.offset,
  });
}

/**
 * Append to `runs` the old-GNU sparse entries (`count` pairs of 12-byte numeric offset and
 * numbytes) found at `off` in `block`, stopping at the first empty pair.
 */
export function readGnuSparseRuns(block: Uint8Array, off: number, count: number, runs: SparseRun[], ctx: SparseContext): void {
  for (let i = 0; i < count; i++) {
    const at = off + i * 24;
    if (block[at] === 0) return;
    const offset = readNumeric(block, at, 12);
    const length = readNumeric(block, at + 12, 12);
    if (offset === undefined || length === undefined) throw sparseError(ctx, `entry ${runs.length} is not numeric`);
    runs.push({ offset, length });
  }
}

/**
 * Read a PAX 1.0 sparse map (decimal lines: count, then offset/numbytes pairs) from the
 * blocks `nextBlock` returns. Returns the runs and the number of map bytes (a multiple of
 * 512) consumed. `limit` bounds the map size.
 */
export async function readSparseMapV1(
  nextBlock: () => Promise<Uint8Array>,
  limit: number,
  ctx: SparseContext,
): Promise<{ runs: SparseRun[]; mapBytes: number }> {
  const nums: number[] = [];
  let want = -1; // numbers expected in all, known after the first line
  let cur = 0;
  let digits = 0;
  let mapBytes = 0;
  while (want < 0 || nums.length < want) {
    if (mapBytes >= limit) throw sparseError(ctx, `the map is larger than the ${limit}-byte limit`);
    const block = await nextBlock();
    mapBytes += block.length;
    for (let i = 0; i < block.length && (want < 0 || nums.length < want); i++) {
      const c = block[i] ?? 0;
      if (c >= 0x30 && c <= 0x39) {
        cur = cur * 10 + (c - 0x30);
        if (++digits > 16 || !Number.isSafeInteger(cur)) throw sparseError(ctx, 'a number is too large');
      } else if (c === 0x0a && digits > 0) {
        nums.push(cur);
        if (nums.length === 1) want = 1 + 2 * cur;
        cur = 0;
        digits = 0;
      } else {
        throw sparseError(ctx, `unexpected byte 0x${c.toString(16)} at byte ${mapBytes - block.length + i} of the map`);
      }
    }
  }
  const runs: SparseRun[] = [];
  for (let i = 1; i < nums.length; i += 2) runs.push({ offset: nums[i] ?? 0, length: nums[i + 1] ?? 0 });
  return { runs, mapBytes };
}

/**
 * Check that `runs` are in increasing order, do not overlap, lie within `realSize` and add up
 * to `dataSize` stored bytes. Returns the runs without the empty ones.
 * Throws FormatError 'ERR_TAR_SPARSE'.
 */
export function validateSparseRuns(runs: SparseRun[], realSize: number, dataSize: number, ctx: SparseContext): SparseRun[] {
  const out: SparseRun[] = [];
  let end = 0;
  let total = 0;
  for (const run of runs) {
    if (run.offset < end) throw sparseError(ctx, `the run at ${run.offset} overlaps or precedes the previous run ending at ${end}`);
    end = run.offset + run.length;
    if (end > realSize) throw sparseError(ctx, `the run at ${run.offset} ends at ${end}, beyond the ${realSize}-byte file size`);
    total += run.length;
    if (run.length > 0) out.push(run);
  }
  if (total !== dataSize) throw sparseError(ctx, `the runs hold ${total} bytes but the archive stores ${dataSize}`);
  return out;
}
