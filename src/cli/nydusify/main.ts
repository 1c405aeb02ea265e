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
import { checkImageRules } from '../../nydusify/check.js';
import { copyImage } from '../../nydusify/copy.js';
import { bootstrapLayerOf, fetchBootstrap, resolveManifest } from '../../nydusify/image-parts.js';
import { parsePlatforms, type PlatformSpec } from '../../nydusify/platform.js';
import { defaultNydusdPath, nydusdConfigFor, startNydusdMount, workSubdir } from '../../nydusify/nydusd-runner.js';
import { join, resolve } from 'node:path';
import { parseSize, readStdin, runTool, str, type CommandSpec } from '../cli-args.js';
import { parsePrefetchPatterns } from '../nydus-image/create-command.js';
import { createProgress } from './progress.js';
import { profileCommand } from './profile-command.js';
import { optimizeCommand } from './optimize-command.js';

/** Flags every command that talks to registries takes. */
const REGISTRY_OPTIONS: CommandSpec['options'] = {
  'plain-http': { type: 'boolean', help: 'Talk to registries over plain HTTP' },
  'source-insecure': { type: 'boolean', help: 'Do not verify the source registry\'s TLS certificate' },
  'target-insecure': { type: 'boolean', help: 'Do not verify the target registry\'s TLS certificate' },
};

/** How to open the source or target reference, from the flags. */
function accessOf(v: Record<string, string | boolean | string[] | undefined>, side: 'source' | 'target', write: boolean): Parameters<typeof openImageRef>[1] {
  return { write, plainHttp: v['plain-http'] === true, insecure: v[`${side}-insecure`] === true, dockerConfigPath: defaultDockerConfigPath(process.env, homedir()) };
}

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
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch[/variant],…', help: 'Platforms to convert from an index (comma-separated)' },
    'all-platforms': { type: 'boolean', help: 'Convert every platform of an index' },
    ...REGISTRY_OPTIONS,
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
    const platforms = parsePlatforms(str(v.platform) ?? 'linux/amd64');
    const patterns = v['prefetch-patterns'] ? parsePrefetchPatterns(await readStdin()) : ['/'];
    const src = await openImageRef(source, accessOf(v, 'source', false));
    const dst = await openImageRef(target, accessOf(v, 'target', true));
    const t0 = Date.now();
    const r = await convertImage(src.store, src.reference, dst.store, dst.reference, {
      workDir: str(v['work-dir']) ?? './tmp', compressor, chunkSize, prefetchPatterns: patterns.length > 0 ? patterns : ['/'],
      platforms, allPlatforms: v['all-platforms'] === true,
      onProgress: createProgress(process.stdout),
    });
    process.stdout.write(`converted ${source} -> ${target}: ${r.mediaType} ${r.digest} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  },
};

/** The one platform of check and mount's `--platform`. */
function platformOf(v: string | boolean | string[] | undefined): PlatformSpec {
  const text = str(v) ?? 'linux/amd64';
  const [one, ...more] = parsePlatforms(text);
  if (!one || more.length > 0) throw new UsageError('ERR_USAGE', `Cannot use --platform "${text}": give one platform (os/arch[/variant])`);
  return one;
}

const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'Check a Nydus image: manifest, bootstrap, and (with --source) its file system against the source',
  usage: 'check --target REF [--source REF] [options]',
  options: {
    source: { type: 'string', arg: 'ref', help: 'Source (OCI) image; enables the file system rule' },
    target: { type: 'string', arg: 'ref', help: 'Target (Nydus) image' },
    'work-dir': { type: 'string', default: './tmp', arg: 'dir', help: 'Work directory (source rootfs, bootstrap, blob cache, mountpoint)' },
    nydusd: { type: 'string', arg: 'path', help: 'nydusd binary [default: bin/nydusd of this checkout, or $NYDUSD]' },
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch', help: 'Platform to check from an index' },
    ...REGISTRY_OPTIONS,
  },
  async run(v) {
    const source = str(v.source);
    const target = str(v.target);
    if (!target) throw new UsageError('ERR_USAGE', 'check needs --target');
    const plainHttp = v['plain-http'] === true;
    const tgt = await openImageRef(target, accessOf(v, 'target', false));
    const src = source ? await openImageRef(source, accessOf(v, 'source', false)) : undefined;
    const r = await checkImageRules(tgt, src, {
      workDir: str(v['work-dir']) ?? './tmp', nydusd: str(v.nydusd) ?? defaultNydusdPath(), plainHttp,
      targetInsecure: v['target-insecure'] === true, platform: platformOf(v.platform),
      onProgress: (line) => process.stderr.write(`${line}\n`),
    });
    for (const p of r.problems) process.stdout.write(`${p}\n`);
    for (const d of r.diffs) process.stdout.write(`${d}\n`);
    if (r.problems.length > 0 || r.diffs.length > 0) {
      process.stdout.write(`check failed: ${r.problems.length} rule problem(s), ${r.diffs.length} file system difference(s)\n`);
      return 1;
    }
    process.stdout.write(`check passed: ${target}: ${r.layers} layers, manifest and bootstrap rules hold${source ? `, ${r.entries} entries equal to ${source}` : ''}\n`);
    return 0;
  },
};

const mountCommand: CommandSpec = {
  name: 'mount',
  summary: 'Mount a Nydus image from a registry (or OCI layout) with nydusd until SIGINT/SIGTERM',
  usage: 'mount --target REF [--mount-path DIR] [options]',
  options: {
    target: { type: 'string', arg: 'ref', help: 'Nydus image' },
    'mount-path': { type: 'string', default: './image-fs', arg: 'dir', help: 'Where to mount it' },
    'work-dir': { type: 'string', default: './tmp', arg: 'dir', help: 'Work directory (bootstrap, blob cache)' },
    nydusd: { type: 'string', arg: 'path', help: 'nydusd binary [default: bin/nydusd of this checkout, or $NYDUSD]' },
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch', help: 'Platform to mount from an index' },
    'plain-http': { type: 'boolean', help: 'Talk to registries over plain HTTP' },
    'target-insecure': { type: 'boolean', help: 'Do not verify the registry\'s TLS certificate' },
  },
  async run(v) {
    const target = str(v.target);
    if (!target) throw new UsageError('ERR_USAGE', 'mount needs --target');
    const plainHttp = v['plain-http'] === true;
    const insecure = v['target-insecure'] === true;
    const tgt = await openImageRef(target, { write: false, plainHttp, insecure, dockerConfigPath: defaultDockerConfigPath(process.env, homedir()) });
    const m = await resolveManifest(tgt.store, tgt.reference, { platform: platformOf(v.platform), nydus: true });
    const work = workSubdir(str(v['work-dir']) ?? './tmp', `mount-${m.digest.replace(/^sha256:/, '').slice(0, 16)}`);
    const boot = join(work, 'image.boot');
    await fetchBootstrap(tgt.store, bootstrapLayerOf(m.manifest, target), boot);
    let signalled: ((s: NodeJS.Signals) => void) | undefined;
    const signal = new Promise<NodeJS.Signals>((res) => { signalled = res; });
    const onSignal = (s: NodeJS.Signals): void => signalled?.(s);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const d = await startNydusdMount({
        nydusd: str(v.nydusd) ?? defaultNydusdPath(), bootstrap: boot, mountpoint: resolve(str(v['mount-path']) ?? './image-fs'),
        configPath: join(work, 'nydusd.json'), stdio: 'inherit', logLevel: 'info',
        config: nydusdConfigFor(tgt.store.location, { plainHttp, insecure, cacheDir: workSubdir(work, 'cache') }),
      });
      try {
        process.stdout.write(`mounted ${target} at ${d.mountpoint} (nydusd pid ${d.pid}); Ctrl-C to unmount\n`);
        const how = await Promise.race([signal, d.exited.then(() => 'exit' as const)]);
        if (how === 'exit') {
          process.stderr.write(`nydusify: nydusd exited (${d.child.exitCode ?? d.child.signalCode ?? '?'})\n`);
          return 1;
        }
        process.stdout.write(`${how}: unmounting ${d.mountpoint}\n`);
        return 0;
      } finally {
        await d.stop();
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

const copyCommand: CommandSpec = {
  name: 'copy',
  summary: 'Copy an image (manifest or index, config, blobs, bootstrap) between registries or OCI layouts',
  usage: 'copy --source REF --target REF [options]',
  options: {
    source: { type: 'string', arg: 'ref', help: 'Source image' },
    target: { type: 'string', arg: 'ref', help: 'Target image' },
    'work-dir': { type: 'string', default: './tmp', arg: 'dir', help: 'Work directory' },
    ...REGISTRY_OPTIONS,
  },
  async run(v) {
    const source = str(v.source);
    const target = str(v.target);
    if (!source || !target) throw new UsageError('ERR_USAGE', 'copy needs --source and --target');
    const src = await openImageRef(source, accessOf(v, 'source', false));
    const dst = await openImageRef(target, accessOf(v, 'target', true));
    const r = await copyImage(src.store, src.reference, dst.store, dst.reference, {
      workDir: str(v['work-dir']) ?? './tmp',
      onProgress: (e) => process.stdout.write(`${e.kind.padEnd(9)} ${e.detail}${e.bytes !== undefined ? ` (${e.bytes} bytes)` : ''}\n`),
    });
    process.stdout.write(`copied ${source} -> ${target}: ${r.mediaType} ${r.digest}; blobs: ${r.blobs.copied} copied (${r.blobs.bytes} bytes), ${r.blobs.mounted} mounted, ${r.blobs.existing} already there\n`);
    return 0;
  },
};

await runTool('nydusify', 'convert, check, mount and copy Nydus images; manage their prefetch profiles', [convertCommand, checkCommand, mountCommand, copyCommand, optimizeCommand, profileCommand], process.argv.slice(2));
