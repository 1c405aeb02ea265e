/**
 * `nydusify`: convert OCI images to Nydus images. Image references: `host[:port]/repo[:tag]`
 * in a registry, or `oci:DIR[:TAG]` for OCI layout directories (umoci, `skopeo copy oci:…`).
 * @module
 */
import { homedir } from 'node:os';
import { isWritableCompressor } from '../../util/compress.js';
import { defaultDockerConfigPath } from '../../registry/credentials.js';
import { UsageError } from '../../util/errors.js';
import { isValidChunkSize } from '../../format/v6/constants.js';
import { convertImage } from '../../nydusify/convert.js';
import { openImageRef } from '../../nydusify/open-image-ref.js';
import { parseSize, readStdin, runTool, str, type CommandSpec } from '../cli-args.js';
import { parsePrefetchPatterns } from '../nydus-image/create-command.js';

const convertCommand: CommandSpec = {
  name: 'convert',
  summary: 'Convert an OCI image to a Nydus image (RAFS v6)',
  usage: 'convert --source REF --target REF [options]   (REF: host[:port]/repo[:tag] or oci:DIR[:TAG])',
  options: {
    source: { type: 'string', arg: 'ref', help: 'Source image' },
    target: { type: 'string', arg: 'ref', help: 'Target image' },
    'work-dir': { type: 'string', default: './tmp', arg: 'dir', help: 'Work directory (also the conversion cache)' },
    compressor: { type: 'string', default: 'zstd', arg: 'algo', help: 'zstd, lz4_block, none' },
    'chunk-size': { type: 'string', default: '0x100000', arg: 'size', help: 'Chunk size' },
    'fs-version': { type: 'string', default: '6', arg: 'ver', help: 'RAFS version (only 6)' },
    'prefetch-patterns': { type: 'boolean', help: 'Read prefetch paths from stdin (default "/")' },
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch', help: 'Platform to convert from an index' },
    'all-platforms': { type: 'boolean', help: 'Convert every platform of an index' },
    'plain-http': { type: 'boolean', help: 'Talk to registries over plain HTTP' },
    'source-insecure': { type: 'boolean', help: 'Do not verify the source registry\'s TLS certificate' },
    'target-insecure': { type: 'boolean', help: 'Do not verify the target registry\'s TLS certificate' },
  },
  async run(v) {
    const source = str(v.source);
    const target = str(v.target);
    if (!source || !target) throw new UsageError('ERR_USAGE', 'convert needs --source and --target');
    if (str(v['fs-version']) !== '6') throw new UsageError('ERR_USAGE', '--fs-version must be 6');
    const compressor = str(v.compressor) ?? 'zstd';
    if (!isWritableCompressor(compressor)) throw new UsageError('ERR_USAGE', `--compressor "${compressor}" is not zstd, lz4_block or none`);
    const chunkSize = parseSize(str(v['chunk-size']) ?? '0x100000', '--chunk-size');
    if (!isValidChunkSize(chunkSize)) throw new UsageError('ERR_USAGE', `--chunk-size 0x${chunkSize.toString(16)} is not a power of two in 0x1000..0x1000000`);
    const [os, architecture] = (str(v.platform) ?? 'linux/amd64').split('/');
    if (!os || !architecture) throw new UsageError('ERR_USAGE', '--platform must be os/arch');
    const patterns = v['prefetch-patterns'] ? parsePrefetchPatterns(await readStdin()) : ['/'];
    const dockerConfigPath = defaultDockerConfigPath(process.env, homedir());
    const plainHttp = v['plain-http'] === true;
    const src = await openImageRef(source, { write: false, plainHttp, insecure: v['source-insecure'] === true, dockerConfigPath });
    const dst = await openImageRef(target, { write: true, plainHttp, insecure: v['target-insecure'] === true, dockerConfigPath });
    const t0 = Date.now();
    const r = await convertImage(src.store, src.reference, dst.store, dst.reference, {
      workDir: str(v['work-dir']) ?? './tmp', compressor, chunkSize, prefetchPatterns: patterns.length > 0 ? patterns : ['/'],
      platform: { os, architecture }, allPlatforms: v['all-platforms'] === true,
      onProgress: (e) => process.stdout.write(`${e.kind.padEnd(12)} ${e.detail}${e.bytes !== undefined ? ` (${e.bytes} bytes)` : ''}\n`),
    });
    process.stdout.write(`converted ${source} -> ${target}: ${r.mediaType} ${r.digest} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  },
};

await runTool('nydusify', 'convert OCI images to Nydus images', [convertCommand], process.argv.slice(2));
