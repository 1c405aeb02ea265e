/**
 * `nydus-image optimize`.
 * @module
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { UsageError } from '../../util/errors.js';
import { blobDirReader, optimize } from '../../builder/optimize.js';
import { parsePrefetchList } from '../../builder/prefetch-list.js';
import { tempPathFor } from '../../util/atomic-file.js';
import { str, type CommandSpec } from '../cli-args.js';

/** The prefetch list named by `--prefetch-files`: a file, or `-` for stdin. */
export async function readPrefetchFiles(arg: string): Promise<string[]> {
  if (arg === '-') {
    const parts: Buffer[] = [];
    if (!process.stdin.isTTY) for await (const c of process.stdin) parts.push(c as Buffer);
    return parsePrefetchList(Buffer.concat(parts), '(stdin)');
  }
  let data: Buffer;
  try {
    data = readFileSync(arg);
  } catch (e) {
    throw new UsageError('ERR_USAGE', `Cannot read prefetch list ${arg}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { path: arg });
  }
  return parsePrefetchList(data, arg);
}

export const optimizeCommand: CommandSpec = {
  name: 'optimize',
  summary: 'Give an image a new prefetch table and one new blob with the listed files\' data in list order',
  usage: 'optimize --bootstrap IN --blob-dir DIR --prefetch-files LIST|- --output-bootstrap OUT [--output-blob-dir DIR]',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap of the image' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Directory holding the image\'s blobs (named by id)' },
    'prefetch-files': { type: 'string', short: 'p', arg: 'path', help: 'Prefetch list: absolute paths, one a line, in access order ("-": stdin)' },
    'output-bootstrap': { type: 'string', short: 'O', arg: 'path', help: 'New bootstrap to write' },
    'output-blob-dir': { type: 'string', arg: 'dir', help: 'Where the new blob goes [default: --blob-dir]' },
    'output-json': { type: 'string', short: 'J', arg: 'path', help: 'Write a JSON summary here' },
  },
  async run(v) {
    const bootstrap = str(v.bootstrap);
    const blobDir = str(v['blob-dir']);
    const list = str(v['prefetch-files']);
    const output = str(v['output-bootstrap']);
    for (const [name, val] of [['--bootstrap', bootstrap], ['--blob-dir', blobDir], ['--prefetch-files', list], ['--output-bootstrap', output]] as const) {
      if (!val) throw new UsageError('ERR_USAGE', `Cannot optimize: ${name} is required (see 'nydus-image optimize --help')`);
    }
    const prefetch = await readPrefetchFiles(list as string);
    const reader = blobDirReader(blobDir as string);
    try {
      const r = await optimize({
        bootstrap: bootstrap as string, outputBootstrap: output as string, outputBlobDir: str(v['output-blob-dir']) ?? (blobDir as string),
        prefetch, readBlob: reader.read,
        onWarn: (code, msg) => process.stderr.write(`nydus-image: warning: ${msg} [${code}]\n`),
      });
      const out = str(v['output-json']);
      if (out) {
        const tmp = tempPathFor(out);
        writeFileSync(tmp, `${JSON.stringify({
          version: '0.1.0', bootstrap: r.bootstrap, blobs: r.blobs, prefetch_blob: r.blobId ?? null, blob_path: r.blobPath ?? null,
          blob_size: r.blobSize, prefetch: r.prefetch, missing: r.missing, chunks: r.chunks,
        }, null, 2)}\n`);
        renameSync(tmp, out);
      }
      process.stdout.write(`${r.blobId ? `blob ${r.blobId} (${r.blobSize} bytes, ${r.chunks} chunks)` : 'no new blob (no listed file has data)'}, bootstrap ${r.bootstrap} with ${r.prefetch.length} prefetch entries\n`);
      return 0;
    } finally {
      reader.close();
    }
  },
};
