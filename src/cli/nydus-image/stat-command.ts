/**
 * `nydus-image stat`: files, chunks, dedup and compression ratios of one or more bootstraps.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { UsageError } from '../../util/errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../format/v6/constants.js';
import { RafsImage } from '../../image/rafs-image.js';
import { fileSource } from '../../image/byte-source.js';
import { walkImage } from '../../image/walk.js';
import { str, type CommandSpec } from '../cli-args.js';

/** Figures `stat` prints. */
export interface ImageStats {
  files: number;
  dirs: number;
  symlinks: number;
  others: number;
  file_bytes: number;
  chunk_refs: number;
  unique_chunks: number;
  unique_bytes: number;
  compressed_bytes: number;
  dedup_ratio: number;
  compression_ratio: number;
}

/** Compute the figures of one image. */
export function imageStats(image: RafsImage): ImageStats {
  const s: ImageStats = { files: 0, dirs: 0, symlinks: 0, others: 0, file_bytes: 0, chunk_refs: 0, unique_chunks: 0, unique_bytes: 0, compressed_bytes: 0, dedup_ratio: 1, compression_ratio: 1 };
  const seen = new Set<number>();
  const chunks = new Set<number>();
  let refBytes = 0;
  for (const e of walkImage(image)) {
    const i = e.inode;
    if (seen.has(i.nid)) continue;
    seen.add(i.nid);
    const t = i.mode & S_IFMT;
    if (t === S_IFDIR) s.dirs++;
    else if (t === S_IFLNK) s.symlinks++;
    else if (t === S_IFREG) {
      s.files++;
      s.file_bytes += i.size;
      for (const c of image.chunkIndexes(i)) {
        s.chunk_refs++;
        const key = c.blobIndex * 2 ** 24 + c.chunkIndex;
        const r = image.chunkRecord(c);
        refBytes += r.uncompressedSize;
        if (!chunks.has(key)) {
          chunks.add(key);
          s.unique_chunks++;
          s.unique_bytes += r.uncompressedSize;
          s.compressed_bytes += r.compressedSize;
        }
      }
    } else s.others++;
  }
  s.dedup_ratio = s.unique_bytes > 0 ? refBytes / s.unique_bytes : 1;
  s.compression_ratio = s.compressed_bytes > 0 ? s.unique_bytes / s.compressed_bytes : 1;
  return s;
}

export const statCommand: CommandSpec = {
  name: 'stat',
  summary: 'Print file, chunk, dedup and compression statistics of bootstraps',
  usage: 'stat [options] [BOOTSTRAP...]',
  options: {
    bootstrap: { type: 'string', short: 'B', multiple: true, arg: 'path', help: 'Bootstrap (repeatable)' },
    'output-json': { type: 'string', short: 'J', arg: 'path', help: 'Write the figures as JSON here' },
  },
  async run(v, pos) {
    const boots = [...((v.bootstrap as string[] | undefined) ?? []), ...pos];
    if (boots.length === 0) throw new UsageError('ERR_USAGE', 'Cannot stat: give at least one bootstrap');
    const all: Record<string, ImageStats> = {};
    for (const b of boots) {
      const img = new RafsImage(fileSource(b));
      try {
        const s = imageStats(img);
        all[b] = s;
        process.stdout.write(`${b}:\n  files ${s.files}, dirs ${s.dirs}, symlinks ${s.symlinks}, other ${s.others}\n  file data ${s.file_bytes} bytes in ${s.chunk_refs} chunk references\n  unique chunks ${s.unique_chunks} (${s.unique_bytes} bytes), compressed ${s.compressed_bytes} bytes\n  dedup ratio ${s.dedup_ratio.toFixed(2)}, compression ratio ${s.compression_ratio.toFixed(2)}\n`);
      } finally {
        img.close();
      }
    }
    const out = str(v['output-json']);
    if (out) writeFileSync(out, `${JSON.stringify(boots.length === 1 ? all[boots[0] as string] : all, null, 2)}\n`);
    return 0;
  },
};
