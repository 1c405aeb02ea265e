/**
 * The last layer of a Nydus image: a tar.gz holding `image/image.boot` (mode 0444), the merged
 * bootstrap, where nydus-snapshotter looks for it.
 * @module
 */
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { TarWriter } from '../export/tar-writer.js';

/** The packed layer. */
export interface BootstrapLayer {
  /** Path of the tar.gz. */
  path: string;
  /** sha256 of the tar.gz (the layer digest). */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string;
}

/** Pack `bootstrap` into `<outPath>` as the bootstrap layer. */
export function packBootstrapLayer(bootstrap: string, tarPath: string, outPath: string): BootstrapLayer {
  const fd = openSync(tarPath, 'w');
  try {
    const tar = new TarWriter(fd);
    const base = { uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0 };
    tar.entry({ ...base, path: 'image', type: '5', mode: 0o755 });
    const size = statSync(bootstrap).size;
    tar.entry({ ...base, path: 'image/image.boot', type: '0', mode: 0o444, size });
    tar.data(readFileSync(bootstrap));
    tar.endData(size);
    tar.finish();
  } finally {
    closeSync(fd);
  }
  const tarData = readFileSync(tarPath);
  const gz = gzipSync(tarData, { level: 6 });
  writeFileSync(outPath, gz);
  return {
    path: outPath,
    digest: `sha256:${createHash('sha256').update(gz).digest('hex')}`,
    size: gz.length,
    diffId: `sha256:${createHash('sha256').update(tarData).digest('hex')}`,
  };
}
