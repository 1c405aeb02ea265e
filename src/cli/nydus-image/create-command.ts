/**
 * `nydus-image create`.
 * @module
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { UsageError } from '../../util/errors.js';
import { isWritableCompressor } from '../../util/compress.js';
import { isDigester } from '../../util/digest.js';
import { isValidChunkSize, RAFS_DEFAULT_CHUNK_SIZE } from '../../format/v6/constants.js';
import { create, type SourceType } from '../../builder/create.js';
import { buildLayer } from '../../builder/layer-build.js';
import { detectLayerCompression, openLayer } from '../../tar/open-layer.js';
import { isWhiteoutSpec } from '../../builder/whiteout.js';
import { parseSize, readStdin, str, type CommandSpec } from '../cli-args.js';

const TYPES: Record<string, SourceType> = {
  'dir-rafs': 'dir-rafs', directory: 'dir-rafs', 'tar-rafs': 'tar-rafs', 'targz-rafs': 'tar-rafs',
};

/** Whether `path` is a gzip or zstd file (false when it cannot be read: create says why). */
function compressedFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return detectLayerCompression(head) !== 'none';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Parse prefetch patterns: absolute paths, one a line. */
export function parsePrefetchPatterns(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const p = line.trim();
    if (p.length === 0) continue;
    if (!p.startsWith('/')) throw new UsageError('ERR_USAGE', `Cannot use prefetch pattern "${p}": it must be an absolute path`);
    out.push(p.length > 1 ? p.replace(/\/+$/, '') : p);
  }
  return out;
}

export const createCommand: CommandSpec = {
  name: 'create',
  summary: 'Build a RAFS v6 bootstrap and data blob from a directory or a layer tarball',
  usage: 'create [options] SOURCE',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap file to write' },
    blob: { type: 'string', short: 'b', arg: 'path', help: 'Data blob file to write' },
    'blob-dir': { type: 'string', short: 'D', arg: 'dir', help: 'Directory to write the blob into, named by its id' },
    type: { type: 'string', short: 't', default: 'dir-rafs', arg: 'type', help: 'Source type: dir-rafs, tar-rafs (tar, tar+gzip, tar+zstd), targz-rafs' },
    'source-type': { type: 'string', arg: 'type', help: 'Alias of --type' },
    'chunk-size': { type: 'string', default: '0x100000', arg: 'size', help: 'Chunk size: a power of two, 0x1000..0x1000000' },
    compressor: { type: 'string', default: 'zstd', arg: 'algo', help: 'Chunk compressor: zstd, lz4_block, none' },
    digester: { type: 'string', default: 'blake3', arg: 'algo', help: 'Chunk digest: blake3, sha256' },
    'fs-version': { type: 'string', short: 'v', default: '6', arg: 'ver', help: 'RAFS version (only 6)' },
    'whiteout-spec': { type: 'string', default: 'oci', arg: 'spec', help: 'Whiteout spec: oci, overlayfs, none' },
    'prefetch-policy': { type: 'string', default: 'none', arg: 'policy', help: 'fs: read prefetch paths from stdin; none' },
    'blob-inline-meta': { type: 'boolean', help: 'Append the bootstrap to the blob' },
    'inline-bootstrap': { type: 'boolean', help: 'Alias of --blob-inline-meta' },
    features: { type: 'string', arg: 'list', help: 'Comma-separated features: blob-toc' },
    'output-json': { type: 'string', short: 'J', arg: 'path', help: 'Write a JSON summary here' },
    'log-level': { type: 'string', short: 'l', default: 'info', arg: 'level', help: 'Log level' },
  },
  async run(v, pos) {
    const source = pos[0];
    if (!source || pos.length > 1) throw new UsageError('ERR_USAGE', "Cannot create: give exactly one SOURCE (see 'nydus-image create --help')");
    const typeName = str(v['source-type']) ?? str(v.type) ?? 'dir-rafs';
    const type = TYPES[typeName];
    if (!type) throw new UsageError('ERR_USAGE', `Cannot create: unsupported --type "${typeName}" (dir-rafs, tar-rafs, targz-rafs)`);
    if (str(v['fs-version']) !== '6') throw new UsageError('ERR_USAGE', `Cannot create: --fs-version ${str(v['fs-version'])} is not supported (only 6)`);
    const chunkSize = parseSize(str(v['chunk-size']) ?? String(RAFS_DEFAULT_CHUNK_SIZE), '--chunk-size');
    if (!isValidChunkSize(chunkSize)) throw new UsageError('ERR_USAGE', `Cannot create: --chunk-size 0x${chunkSize.toString(16)} is not a power of two in 0x1000..0x1000000`);
    const compressor = str(v.compressor) ?? 'zstd';
    if (!isWritableCompressor(compressor)) throw new UsageError('ERR_USAGE', `Cannot create: --compressor "${compressor}" is not one of zstd, lz4_block, none`);
    const digester = str(v.digester) ?? 'blake3';
    if (!isDigester(digester)) throw new UsageError('ERR_USAGE', `Cannot create: --digester "${digester}" is not one of blake3, sha256`);
    const spec = str(v['whiteout-spec']) ?? 'oci';
    if (!isWhiteoutSpec(spec)) throw new UsageError('ERR_USAGE', `Cannot create: --whiteout-spec "${spec}" is not one of oci, overlayfs, none`);
    const features = (str(v.features) ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    for (const f of features) if (f !== 'blob-toc') throw new UsageError('ERR_USAGE', `Cannot create: unknown feature "${f}"`);
    const policy = str(v['prefetch-policy']) ?? 'none';
    if (policy !== 'fs' && policy !== 'none') throw new UsageError('ERR_USAGE', `Cannot create: --prefetch-policy "${policy}" is not one of fs, none`);
    const prefetch = policy === 'fs' ? parsePrefetchPatterns(await readStdin()) : [];
    const options = {
      chunkSize, compressor, digester, whiteoutSpec: spec, prefetch,
      blobInlineMeta: v['blob-inline-meta'] === true || v['inline-bootstrap'] === true,
      blobToc: features.includes('blob-toc'),
      ...(str(v.bootstrap) ? { bootstrap: str(v.bootstrap) as string } : {}),
      ...(str(v.blob) ? { blob: str(v.blob) as string } : {}),
      ...(str(v['blob-dir']) ? { blobDir: str(v['blob-dir']) as string } : {}),
    };
    const onWarn = (code: string, msg: string): void => { if (str(v['log-level']) !== 'error') process.stderr.write(`nydus-image: warning: ${msg} [${code}]\n`); };
    // A compressed layer is decompressed on this thread while a worker thread builds it.
    const r = type === 'tar-rafs' && compressedFile(source)
      ? await buildLayer(openLayer(createReadStream(source, { highWaterMark: 1 << 20 })), options, onWarn)
      : await create({ ...options, source, type, onWarn });
    const summary = {
      version: '0.1.0', bootstrap: r.bootstrap ?? null, blobs: r.blobId ? [r.blobId] : [], blob_path: r.blobPath ?? null,
      blob_size: r.blobSize, fs_version: '6', compressor, digester, chunk_size: `0x${chunkSize.toString(16)}`,
      files: r.files, chunks: r.stats.chunkRefs, unique_chunks: r.stats.chunks,
    };
    const out = str(v['output-json']);
    if (out) (await import('node:fs')).writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
    process.stdout.write(`${r.blobId ? `blob ${r.blobId} (${r.blobSize} bytes, ${r.stats.chunks} chunks)` : 'no blob (no file data)'}${r.bootstrap ? `, bootstrap ${r.bootstrap}` : ''}\n`);
    return 0;
  },
};
