/**
 * Where a regular file's data lies: one run from 0 for plain files, or the sparse map in any
 * of the forms GNU tar writes (old GNU type 'S' with extension blocks, PAX 0.0, 0.1 and 1.0).
 * Reads the parts of the map that are stored in the archive (extension blocks, 1.0 map).
 * @module
 */
import type { ByteReader } from './byte-reader.js';
import { BLOCK_SIZE, type RawHeader } from './header.js';
import { readNumeric } from './numeric.js';
import type { PaxFields } from './pax.js';
import { readGnuSparseRuns, readSparseMapV1, validateSparseRuns, type SparseContext, type SparseRun } from './sparse.js';
import { tarError, truncatedError } from './tar-errors.js';

/** Layout of a regular file's stored data. */
export interface FileLayout {
  /** Data runs, in order; their lengths add up to `dataSize`. */
  runs: SparseRun[];
  /** Logical file size. */
  size: number;
  sparse: boolean;
  /** Offset in the tar stream where the entry's `storedSize` bytes begin. */
  bodyStart: number;
}

/**
 * Work out the layout of a regular file whose header `block` (type `h.typeflag`) has just been
 * read, consuming old-GNU sparse extension blocks or a PAX 1.0 map from `reader`.
 * Throws FormatError 'ERR_TAR_SPARSE', 'ERR_TRUNCATED'.
 */
export async function readFileLayout(
  reader: ByteReader,
  h: RawHeader,
  block: Uint8Array,
  pax: PaxFields | undefined,
  storedSize: number,
  ctx: SparseContext,
  maxMapSize: number,
): Promise<FileLayout> {
  const { path, offset } = ctx;
  if (h.typeflag === 'S') {
    // Parse the header's own map before reading on: `block` may be a view of a reused chunk.
    const runs: SparseRun[] = [];
    readGnuSparseRuns(block, 386, 4, runs, ctx);
    let extended = block[482] !== 0;
    const realSize = readNumeric(block, 483, 12);
    if (realSize === undefined) throw tarError('ERR_TAR_SPARSE', path, offset, 'the sparse real size field is not a valid number');
    let blocks = 0;
    while (extended) {
      if (++blocks * BLOCK_SIZE > maxMapSize) throw tarError('ERR_TAR_SPARSE', path, offset, `the sparse map is larger than the ${maxMapSize}-byte limit`);
      const ext = await reader.readExact(BLOCK_SIZE);
      if (ext.got < BLOCK_SIZE) throw truncatedError(path, offset, ext.got, BLOCK_SIZE, 'sparse extension header');
      readGnuSparseRuns(ext.data, 0, 21, runs, ctx);
      extended = ext.data[504] !== 0;
    }
    return { runs: validateSparseRuns(runs, realSize, storedSize, ctx), size: realSize, sparse: true, bodyStart: reader.offset };
  }

  const bodyStart = reader.offset;
  const sp = pax?.sparse;
  if (sp !== undefined && sp.major !== undefined) {
    if (sp.major !== 1 || sp.minor !== 0) {
      throw tarError('ERR_TAR_SPARSE', path, offset, `GNU sparse format ${sp.major}.${sp.minor ?? '?'} is not supported`);
    }
    const nextBlock = async (): Promise<Uint8Array> => {
      const consumed = reader.offset - bodyStart;
      if (consumed + BLOCK_SIZE > storedSize) {
        throw tarError('ERR_TAR_SPARSE', path, offset, `the sparse map runs past the ${storedSize}-byte stored data`);
      }
      const r = await reader.readExact(BLOCK_SIZE);
      if (r.got < BLOCK_SIZE) throw truncatedError(path, offset, consumed + r.got, storedSize, 'body');
      return r.data;
    };
    const { runs, mapBytes } = await readSparseMapV1(nextBlock, maxMapSize, ctx);
    const size = realSizeOf(sp.realSize, runs);
    return { runs: validateSparseRuns(runs, size, storedSize - mapBytes, ctx), size, sparse: true, bodyStart };
  }
  if (sp?.runs !== undefined) {
    if (sp.pendingOffset !== undefined) throw tarError('ERR_TAR_SPARSE', path, offset, 'GNU.sparse.offset has no GNU.sparse.numbytes');
    const size = realSizeOf(sp.realSize, sp.runs);
    return { runs: validateSparseRuns(sp.runs, size, storedSize, ctx), size, sparse: true, bodyStart };
  }
  return { runs: storedSize > 0 ? [{ offset: 0, length: storedSize }] : [], size: storedSize, sparse: false, bodyStart };
}

/** The recorded real size, or else the end of the last run. */
function realSizeOf(recorded: number | undefined, runs: SparseRun[]): number {
  if (recorded !== undefined) return recorded;
  const last = runs[runs.length - 1];
  return last === undefined ? 0 : last.offset + last.length;
}
