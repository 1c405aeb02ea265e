/**
 * `nydus-image unpack`: bootstrap + blobs → tar.
 * @module
 */
import { UsageError } from '../../util/errors.js';
import { BlobResolver } from '../../blob/blob-resolver.js';
import { unpackToTar } from '../../export/unpack.js';
import { str, type CommandSpec } from '../cli-args.js';
import { openBootstrap } from './open-bootstrap.js';

export const unpackCommand: CommandSpec = {
  name: 'unpack',
  summary: 'Unpack an image (bootstrap and blobs) into a tar archive',
  usage: 'unpack [options] --output FILE [BOOTSTRAP]',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap' },
    blob: { type: 'string', short: 'b', arg: 'path', help: 'Data blob (also the source of an inline bootstrap)' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Directory of blobs named by id' },
    output: { type: 'string', short: 'o', arg: 'path', help: 'Tar file to write' },
  },
  async run(v, pos) {
    const output = str(v.output);
    if (!output) throw new UsageError('ERR_USAGE', 'Cannot unpack: --output is required');
    const { image } = openBootstrap(v, pos);
    try {
      const r = unpackToTar(image, new BlobResolver({ blob: str(v.blob), blobDir: str(v['blob-dir']) }), output);
      process.stdout.write(`unpacked ${r.entries} entries, ${r.bytes} bytes of file data to ${output}${r.skippedSockets ? ` (${r.skippedSockets} sockets skipped: tar cannot hold them)` : ''}\n`);
      return 0;
    } finally {
      image.close();
    }
  },
};
