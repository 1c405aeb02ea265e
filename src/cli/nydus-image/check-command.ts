/**
 * `nydus-image check`.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { S_IFMT } from '../../format/v6/constants.js';
import { checkImage } from '../../image/check-image.js';
import { BlobResolver } from '../../blob/blob-resolver.js';
import { str, type CommandSpec } from '../cli-args.js';
import { openBootstrap } from './open-bootstrap.js';

const TYPE_CHAR: Record<number, string> = { 0o040000: 'd', 0o100000: '-', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's' };

export const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'Validate a bootstrap (and its blobs when given) and print its tree',
  usage: 'check [options] [BOOTSTRAP]',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap to check' },
    blob: { type: 'string', short: 'b', arg: 'path', help: 'Blob (its inline bootstrap is checked when no bootstrap is given)' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Directory of blobs: verify every chunk' },
    'output-json': { type: 'string', short: 'J', arg: 'path', help: 'Write a JSON report here' },
    quiet: { type: 'boolean', short: 'q', help: 'Do not print the tree' },
    verbose: { type: 'boolean', short: 'v', help: 'Print inode details' },
  },
  async run(v, pos) {
    const { image, name } = openBootstrap(v, pos);
    const withBlobs = str(v['blob-dir']) !== undefined || str(v.blob) !== undefined;
    const blobs = withBlobs ? new BlobResolver({ blob: str(v.blob), blobDir: str(v['blob-dir']) }) : undefined;
    const lines: string[] = [];
    try {
      const r = checkImage(image, blobs, v.quiet ? undefined : (e) => {
        const i = e.inode;
        const t = TYPE_CHAR[i.mode & S_IFMT] ?? '?';
        const indent = '  '.repeat(e.depth);
        const detail = v.verbose ? ` nid=${i.nid} mode=${(i.mode & 0o7777).toString(8)} uid=${image.uidOf(i)} gid=${image.gidOf(i)} size=${i.size}` : '';
        lines.push(`${indent}${t} ${e.depth === 0 ? '/' : Buffer.from(e.name).toString('utf8')}${detail}`);
      });
      if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
      process.stdout.write(`${name}: RAFS v6 OK: ${r.entries} entries, ${r.inodes} inodes (${r.files} files, ${r.dirs} dirs, ${r.symlinks} symlinks, ${r.others} other), ${image.blobs.length} blobs, ${r.chunkRefs} chunk references${blobs ? `, ${r.chunksVerified} chunks verified` : ''}\n`);
      const out = str(v['output-json']);
      if (out) {
        writeFileSync(out, `${JSON.stringify({
          version: '0.1.0', bootstrap: name, fs_version: '6', compressor: image.compressor, digester: image.digester,
          chunk_size: image.ext.chunkSize, blobs: image.blobs.map((b) => b.slot.blobId), entries: r.entries, inodes: r.inodes,
        }, null, 2)}\n`);
      }
      return 0;
    } finally {
      blobs?.close();
      image.close();
    }
  },
};
