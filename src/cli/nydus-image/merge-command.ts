/**
 * `nydus-image merge`.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { UsageError } from '../../util/errors.js';
import { merge } from '../../builder/merge.js';
import { isWhiteoutSpec } from '../../builder/whiteout.js';
import { readStdin, str, type CommandSpec } from '../cli-args.js';
import { parsePrefetchPatterns } from './create-command.js';

export const mergeCommand: CommandSpec = {
  name: 'merge',
  summary: 'Merge layer bootstraps (bottom first) into one flattened image bootstrap',
  usage: 'merge [options] --bootstrap OUT SOURCE...',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Merged bootstrap to write' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Accepted for compatibility' },
    'whiteout-spec': { type: 'string', default: 'oci', arg: 'spec', help: 'Whiteout spec of the layers: oci, overlayfs, none' },
    'prefetch-policy': { type: 'string', default: 'none', arg: 'policy', help: 'fs: read prefetch paths from stdin; none' },
    'blob-digests': { type: 'string', arg: 'list', help: 'Comma-separated blob ids (sha256 hex, "sha256:" optional), one per source' },
    'original-blob-ids': { type: 'string', arg: 'list', help: 'Alias of --blob-digests' },
    'output-json': { type: 'string', short: 'J', arg: 'path', help: 'Write a JSON summary here' },
  },
  async run(v, pos) {
    const bootstrap = str(v.bootstrap);
    if (!bootstrap) throw new UsageError('ERR_USAGE', 'Cannot merge: --bootstrap is required');
    const spec = str(v['whiteout-spec']) ?? 'oci';
    if (!isWhiteoutSpec(spec)) throw new UsageError('ERR_USAGE', `Cannot merge: --whiteout-spec "${spec}" is not one of oci, overlayfs, none`);
    const policy = str(v['prefetch-policy']) ?? 'none';
    if (policy !== 'fs' && policy !== 'none') throw new UsageError('ERR_USAGE', `Cannot merge: --prefetch-policy "${policy}" is not one of fs, none`);
    const ids = (str(v['blob-digests']) ?? str(v['original-blob-ids']))?.split(',').map((s) => s.trim().replace(/^sha256:/, ''));
    const r = merge({
      sources: pos, bootstrap, whiteoutSpec: spec,
      prefetch: policy === 'fs' ? parsePrefetchPatterns(await readStdin()) : [],
      ...(ids ? { blobIds: ids } : {}),
    });
    const out = str(v['output-json']);
    if (out) writeFileSync(out, `${JSON.stringify({ version: '0.1.0', bootstrap: r.bootstrap, blobs: r.blobs }, null, 2)}\n`);
    process.stdout.write(`merged ${pos.length} layers into ${r.bootstrap} (${r.blobs.length} blobs)\n`);
    return 0;
  },
};
