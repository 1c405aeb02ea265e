/**
 * Streaming tar reader: yields one entry at a time with its body as an async iterable of
 * segments handed through from the input chunks. Only the unread remainder of the current
 * input chunk is held; no archive or entry body is buffered.
 * @module
 */
import type { FormatError } from '../util/errors.js';
import { ByteReader } from './byte-reader.js';
import { resolveEntry, type PendingMeta } from './entry-meta.js';
import { readFileLayout } from './file-layout.js';
import { BLOCK_SIZE, isZeroBlock, parseHeader, type RawHeader } from './header.js';
import { readCString } from './numeric.js';
import { applyPaxRecords, newPaxFields, parsePaxRecords } from './pax.js';
import type { SparseRun } from './sparse.js';
import { tarError, truncatedError } from './tar-errors.js';
import type { ParseTarOptions, TarEntry, TarSegment } from './types.js';

export type { ParseTarOptions, TarEntry, TarEntryType, TarSegment, TarWarningData } from './types.js';

const DEFAULT_MAX_META = 1024 * 1024;
const NO_WARN: NonNullable<ParseTarOptions['onWarn']> = () => undefined;

function padding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

/** State shared by an entry's body iterator and the parser. */
interface BodyCursor {
  active: boolean;
  called: boolean;
}

/**
 * Parse a tar stream: v7, POSIX ustar (prefix) and PAX (per-entry and global records, xattrs),
 * GNU long names/links and GNU sparse files in all their forms. Paths are normalised with
 * `normaliseTarPath`. Each entry's body must be consumed, or abandoned, before asking for the
 * next entry. The archive ends at a zero block (what follows is drained) or at EOF right after
 * a complete entry. Unknown entry types are skipped and reported through `options.onWarn`.
 * Throws FormatError 'ERR_TRUNCATED', 'ERR_TAR_CHECKSUM', 'ERR_TAR_HEADER', 'ERR_TAR_PAX',
 * 'ERR_TAR_SPARSE', 'ERR_TAR_LIMIT', 'ERR_TAR_BODY'; errors from `source` pass through.
 */
export async function* parseTar(source: AsyncIterable<Uint8Array>, options: ParseTarOptions = {}): AsyncGenerator<TarEntry> {
  const maxMeta = options.maxMetaEntrySize ?? DEFAULT_MAX_META;
  const warn = options.onWarn ?? NO_WARN;
  const reader = new ByteReader(source);
  const globals = newPaxFields();
  let pending: PendingMeta | undefined;
  let globalBytes = 0;
  try {
    for (;;) {
      const offset = reader.offset;
      const fast = reader.takeBuffered(BLOCK_SIZE);
      const { data: block, got } = fast !== undefined ? { data: fast, got: BLOCK_SIZE } : await reader.readExact(BLOCK_SIZE);
      if (got === 0 || (got === BLOCK_SIZE && isZeroBlock(block))) {
        if (pending !== undefined) {
          throw tarError('ERR_TRUNCATED', pendingPath(pending), pending.headerOffset, 'the archive ends after its extended headers');
        }
        if (got > 0) await drainTrailer(reader, warn);
        return;
      }
      if (got < BLOCK_SIZE) throw shortHeaderError(block, got, offset, pending);
      const h = parseHeader(block, offset);
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        const data = await readMetaBody(reader, h, offset, maxMeta);
        // Bound the total too: many small headers could otherwise pile up records.
        const metaBytes = (h.typeflag === 'g' ? globalBytes : (pending?.bytes ?? 0)) + data.length;
        if (metaBytes > maxMeta) {
          const what = h.typeflag === 'g' ? 'global extended headers' : 'extended headers of one entry';
          throw tarError('ERR_TAR_LIMIT', h.name, offset, `the ${what} add up to more than the ${maxMeta}-byte limit`);
        }
        if (h.typeflag === 'g') {
          globalBytes = metaBytes;
          applyPaxRecords(globals, parsePaxRecords(data, { offset, name: h.name }), { offset, name: h.name }, true);
          continue;
        }
        pending ??= { headerOffset: offset, bytes: 0 };
        pending.bytes = metaBytes;
        if (h.typeflag === 'x') {
          pending.pax ??= newPaxFields();
          applyPaxRecords(pending.pax, parsePaxRecords(data, { offset, name: h.name }), { offset, name: h.name }, false);
        } else if (h.typeflag === 'L') {
          pending.longName = readCString(data, 0, data.length);
        } else {
          pending.longLink = readCString(data, 0, data.length);
        }
        continue;
      }

      const meta = pending;
      pending = undefined;
      const resolved = resolveEntry(h, meta, globals, offset);
      const entryOffset = meta?.headerOffset ?? offset;
      if (resolved.meta === undefined) {
        const path = resolved.rawPath;
        warn('TAR_UNKNOWN_TYPE', `Skipping tar entry "${path}" at offset ${entryOffset}: type '${printable(h.typeflag)}' is not supported`, {
          offset: entryOffset,
          path,
          typeflag: h.typeflag,
        });
        await skipBody(reader, path, entryOffset, reader.offset, resolved.storedSize, warn);
        continue;
      }
      const { storedSize } = resolved;
      const { path } = resolved.meta;
      let runs: SparseRun[] = [];
      let size = 0;
      let sparse = false;
      let bodyStart = reader.offset;
      if (resolved.meta.type === 'file') {
        if (h.typeflag === 'S' || meta?.pax?.sparse !== undefined) {
          const layout = await readFileLayout(reader, h, block, meta?.pax, storedSize, { path, offset: entryOffset }, maxMeta);
          ({ runs, size, sparse, bodyStart } = layout);
        } else if (storedSize > 0) {
          runs = [{ offset: 0, length: storedSize }];
          size = storedSize;
        }
      }
      const cursor: BodyCursor = { active: true, called: false };
      const entry: TarEntry = {
        ...resolved.meta,
        size,
        sparse,
        body: () => {
          if (!cursor.active) {
            throw tarError('ERR_TAR_BODY', path, entryOffset, 'the parser has already moved past its body');
          }
          if (cursor.called) throw tarError('ERR_TAR_BODY', path, entryOffset, 'its body can be read only once');
          cursor.called = true;
          return readBody(reader, runs, cursor, path, entryOffset, bodyStart, storedSize);
        },
      };
      yield entry;
      cursor.active = false;
      const rest = storedSize - (reader.offset - bodyStart) + padding(storedSize);
      if (reader.skipBuffered(rest) < rest) await skipBody(reader, path, entryOffset, bodyStart, storedSize, warn);
    }
  } finally {
    await reader.close();
  }
}

/** Yield the stored data of a file as segments placed by `runs`. */
async function* readBody(
  reader: ByteReader,
  runs: SparseRun[],
  cursor: BodyCursor,
  path: string,
  entryOffset: number,
  bodyStart: number,
  storedSize: number,
): AsyncGenerator<TarSegment> {
  for (const run of runs) {
    let pos = 0;
    while (pos < run.length) {
      if (!cursor.active) throw tarError('ERR_TAR_BODY', path, entryOffset, 'the parser has already moved past its body');
      const data = reader.nextBuffered(run.length - pos) ?? (await reader.next(run.length - pos));
      if (data === null) throw truncatedError(path, entryOffset, reader.offset - bodyStart, storedSize, 'body');
      yield { offset: run.offset + pos, data };
      pos += data.length;
    }
  }
}

/** Skip what is left of a `storedSize`-byte body that began at `bodyStart`, and its padding. */
async function skipBody(
  reader: ByteReader,
  path: string,
  entryOffset: number,
  bodyStart: number,
  storedSize: number,
  warn: NonNullable<ParseTarOptions['onWarn']>,
): Promise<void> {
  const left = storedSize - (reader.offset - bodyStart);
  const pad = padding(storedSize);
  const skipped = await reader.skip(left + pad);
  if (skipped < left) throw truncatedError(path, entryOffset, storedSize - left + skipped, storedSize, 'body');
  if (skipped < left + pad) {
    warn('TAR_TRUNCATED_PADDING', `Accepting tar entry "${path}" at offset ${entryOffset}: the archive ends in the padding after its body`, {
      offset: entryOffset,
      path,
    });
  }
}

/** Read the body of a PAX or GNU long-name header (bounded by `maxMeta`) and skip its padding. */
async function readMetaBody(reader: ByteReader, h: RawHeader, offset: number, maxMeta: number): Promise<Uint8Array> {
  const size = h.size;
  if (size === undefined) throw tarError('ERR_TAR_HEADER', h.name, offset, 'the size field is not a valid number');
  if (size > maxMeta) {
    throw tarError('ERR_TAR_LIMIT', h.name, offset, `its ${size}-byte extended header exceeds the ${maxMeta}-byte limit`);
  }
  const { data, got } = await reader.readExact(size);
  if (got < size) throw truncatedError(h.name, offset, got, size, 'extended header');
  const copy = data.slice(0, size);
  await reader.skip(padding(size));
  return copy;
}

/** Consume what follows the end-of-archive marker, warning once if it is not all zeros. */
async function drainTrailer(reader: ByteReader, warn: NonNullable<ParseTarOptions['onWarn']>): Promise<void> {
  let warned = false;
  for (;;) {
    const at = reader.offset;
    const chunk = await reader.next(Number.MAX_SAFE_INTEGER);
    if (chunk === null) return;
    if (warned) continue;
    const i = chunk.findIndex((b) => b !== 0);
    if (i >= 0) {
      warned = true;
      warn('TAR_TRAILING_DATA', `Ignoring data at offset ${at + i} after the end of the tar archive`, { offset: at + i });
    }
  }
}

function pendingPath(p: PendingMeta): string | undefined {
  return p.pax?.sparse?.name ?? p.pax?.path ?? p.longName;
}

/** The error for an input that ends `got` bytes into the header at `offset`. */
function shortHeaderError(block: Uint8Array, got: number, offset: number, pending: PendingMeta | undefined): FormatError {
  const name = got >= 100 ? readCString(block, 0, 100) : '';
  const path = (pending && pendingPath(pending)) ?? (name === '' ? undefined : name);
  const looksLikeTar = got >= 262 && readCString(block, 257, 5) === 'ustar';
  if (offset === 0 && !looksLikeTar) {
    return tarError('ERR_TAR_HEADER', undefined, 0, `the input is only ${got} bytes long (not a tar archive?)`);
  }
  return truncatedError(path, pending?.headerOffset ?? offset, got, BLOCK_SIZE, 'header');
}

function printable(typeflag: string): string {
  const c = typeflag.charCodeAt(0);
  return c >= 0x20 && c < 0x7f ? typeflag : `\\x${c.toString(16).padStart(2, '0')}`;
}
