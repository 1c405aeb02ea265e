/**
 * `nydus-image unpack`: write an image's tree, with file data read from its blobs and verified,
 * as a tar archive. Hard links become tar hard links to the first name.
 * @module
 */
import { closeSync, openSync } from 'node:fs';
import { TempFiles } from '../util/atomic-file.js';
import { FormatError } from '../util/errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../format/v6/constants.js';
import type { RafsImage } from '../image/rafs-image.js';
import { walkImage } from '../image/walk.js';
import { readChunk } from '../blob/chunk-reader.js';
import type { BlobResolver } from '../blob/blob-resolver.js';
import { TarWriter, type TarWriteEntry } from './tar-writer.js';

/** Counts of what was written. */
export interface UnpackResult {
  entries: number;
  bytes: number;
  skippedSockets: number;
}

function decodeDev(rdev: number): { major: number; minor: number } {
  return { major: (rdev >>> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

/** Unpack `image` to a tar file at `output`. */
export function unpackToTar(image: RafsImage, blobs: BlobResolver, output: string): UnpackResult {
  const temps = new TempFiles();
  const tmp = temps.for(output);
  const fd = openSync(tmp, 'w', 0o644);
  const result: UnpackResult = { entries: 0, bytes: 0, skippedSockets: 0 };
  try {
    const tar = new TarWriter(fd);
    const firstName = new Map<number, string>();
    for (const e of walkImage(image)) {
      const i = e.inode;
      const type = i.mode & S_IFMT;
      const path = e.path === '/' ? '.' : `.${e.path}`;
      if (type === S_IFSOCK) { result.skippedSockets++; continue; }
      const base: TarWriteEntry = {
        path, type: '0', mode: i.mode, uid: image.uidOf(i), gid: image.gidOf(i), mtime: i.mtime, mtimeNsec: i.mtimeNsec,
        size: 0, xattrs: image.xattrs(i),
      };
      if (type === S_IFREG && i.nlink > 1) {
        const first = firstName.get(i.nid);
        if (first !== undefined) {
          tar.entry({ ...base, type: '1', linkname: Buffer.from(first, 'utf8') });
          result.entries++;
          continue;
        }
        firstName.set(i.nid, path);
      }
      if (type === S_IFDIR) tar.entry({ ...base, type: '5' });
      else if (type === S_IFLNK) tar.entry({ ...base, type: '2', linkname: image.readlink(i) });
      else if (type === S_IFCHR || type === S_IFBLK) {
        const d = decodeDev(image.rdev(i));
        tar.entry({ ...base, type: type === S_IFCHR ? '3' : '4', devmajor: d.major, devminor: d.minor });
      } else if (type === S_IFIFO) tar.entry({ ...base, type: '6' });
      else if (type === S_IFREG) {
        tar.entry({ ...base, type: '0', size: i.size });
        let written = 0;
        for (const c of image.chunkIndexes(i)) {
          const rec = image.chunkRecord(c);
          const blob = image.blobs[c.blobIndex];
          if (!blob) throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot unpack ${e.path}: blob ${c.blobIndex} missing`, { path: e.path });
          const data = readChunk(blobs.open(blob), rec, { compressor: blob.compressor, digester: blob.digester }, `${e.path}`);
          const n = Math.min(data.length, i.size - written);
          tar.data(data.subarray(0, n));
          written += n;
        }
        if (written !== i.size) throw new FormatError('ERR_BAD_CHUNK', `Cannot unpack ${e.path}: chunks hold ${written} bytes, the inode says ${i.size}`, { path: e.path });
        tar.endData(i.size);
        result.bytes += i.size;
      }
      result.entries++;
    }
    tar.finish();
    closeSync(fd);
    temps.commit(tmp, output);
    return result;
  } catch (err) {
    try { closeSync(fd); } catch { /* closed */ }
    throw err;
  } finally {
    temps.cleanup();
    blobs.close();
  }
}
