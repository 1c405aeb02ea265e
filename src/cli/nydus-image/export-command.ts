/**
 * `nydus-image export --block`.
 * @module
 */
import { UsageError } from '../../util/errors.js';
import { BlobResolver } from '../../blob/blob-resolver.js';
import { exportBlock } from '../../export/block-export.js';
import { str, type CommandSpec } from '../cli-args.js';
import { openBootstrap } from './open-bootstrap.js';

export const exportCommand: CommandSpec = {
  name: 'export',
  summary: 'Export an image as a raw EROFS block device image the kernel mounts directly',
  usage: 'export --block [options] --output FILE [BOOTSTRAP]',
  options: {
    block: { type: 'boolean', help: 'Export a raw block device image (required)' },
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap' },
    blob: { type: 'string', short: 'b', arg: 'path', help: 'Data blob (also the source of an inline bootstrap)' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Directory of blobs named by id' },
    output: { type: 'string', short: 'O', arg: 'path', help: 'Disk image to write' },
    verity: { type: 'boolean', help: 'Append a dm-verity hash tree and print its parameters' },
    threads: { type: 'string', arg: 'n', default: '4', help: 'Accepted for compatibility' },
  },
  async run(v, pos) {
    if (v.block !== true) throw new UsageError('ERR_USAGE', 'Cannot export: only --block is supported');
    const output = str(v.output) ?? (str(v.bootstrap) ?? pos[0] ? `${str(v.bootstrap) ?? pos[0]}.disk` : undefined);
    if (!output) throw new UsageError('ERR_USAGE', 'Cannot export: --output is required');
    const { image } = openBootstrap(v, pos);
    try {
      const r = exportBlock(image, new BlobResolver({ blob: str(v.blob), blobDir: str(v['blob-dir']) }), { output, verity: v.verity === true });
      process.stdout.write(`exported ${r.blocks} blocks to ${output}\n`);
      if (r.verity) {
        process.stdout.write(`dm-verity options: --no-superblock --format=1 -s "" --hash=sha256 --data-block-size=4096 --hash-block-size=4096 --data-blocks ${r.verity.dataBlocks} --hash-offset ${r.verity.hashOffset} ${r.verity.rootDigest}\n`);
      }
      return 0;
    } finally {
      image.close();
    }
  },
};
