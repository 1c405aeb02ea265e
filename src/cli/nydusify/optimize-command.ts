/**
 * `nydusify optimize`.
 * @module
 */
import { homedir } from 'node:os';
import { defaultDockerConfigPath } from '../../registry/credentials.js';
import { UsageError } from '../../util/errors.js';
import { openImageRef } from '../../nydusify/open-image-ref.js';
import { optimizeImage } from '../../nydusify/optimize.js';
import { parsePlatforms } from '../../nydusify/platform.js';
import { str, type CommandSpec } from '../cli-args.js';
import { readPrefetchFiles } from '../nydus-image/optimize-command.js';

export const optimizeCommand: CommandSpec = {
  name: 'optimize',
  summary: 'Give a Nydus image a new prefetch table and a blob of the listed files\' data in list order, without converting again',
  usage: 'optimize --source NYDUS_REF --target REF --prefetch-files FILE|- [options]',
  options: {
    source: { type: 'string', arg: 'ref', help: 'Nydus image to optimize' },
    target: { type: 'string', arg: 'ref', help: 'Where the optimized image goes (its old blobs are mounted or kept, not uploaded)' },
    'prefetch-files': { type: 'string', arg: 'file|-', help: 'Prefetch list: absolute paths, one a line, in access order ("-": stdin)' },
    'work-dir': { type: 'string', default: './tmp', arg: 'dir', help: 'Work directory' },
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch', help: 'Platform to pick from a Nydus index' },
    'plain-http': { type: 'boolean', help: 'Talk to registries over plain HTTP' },
    'source-insecure': { type: 'boolean', help: 'Do not verify the source registry\'s TLS certificate' },
    'target-insecure': { type: 'boolean', help: 'Do not verify the target registry\'s TLS certificate' },
  },
  async run(v) {
    const source = str(v.source);
    const target = str(v.target);
    const list = str(v['prefetch-files']);
    if (!source || !target || !list) throw new UsageError('ERR_USAGE', 'optimize needs --source, --target and --prefetch-files');
    const platformText = str(v.platform) ?? 'linux/amd64';
    const [platform, ...more] = parsePlatforms(platformText);
    if (!platform || more.length > 0) throw new UsageError('ERR_USAGE', `Cannot use --platform "${platformText}": give one platform (os/arch[/variant])`);
    const prefetch = await readPrefetchFiles(list);
    const dockerConfigPath = defaultDockerConfigPath(process.env, homedir());
    const plainHttp = v['plain-http'] === true;
    const src = await openImageRef(source, { write: false, plainHttp, insecure: v['source-insecure'] === true, dockerConfigPath });
    const dst = await openImageRef(target, { write: true, plainHttp, insecure: v['target-insecure'] === true, dockerConfigPath });
    const t0 = Date.now();
    const r = await optimizeImage(src.store, src.reference, dst.store, dst.reference, {
      workDir: str(v['work-dir']) ?? './tmp', prefetch, platform,
      onWarn: (code, msg) => process.stderr.write(`nydusify: warning: ${msg} [${code}]\n`),
      onProgress: (e) => process.stdout.write(`${e.kind.padEnd(9)} ${e.detail}${e.bytes !== undefined ? ` (${e.bytes} bytes)` : ''}\n`),
    });
    const u = r.reused;
    process.stdout.write(`optimized ${source} -> ${target}: ${r.digest} in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${r.prefetch.length} prefetch entries, `
      + `${r.bytesRead} chunk bytes read in ${r.reads} requests; old blobs: ${u.kept} kept, ${u.mounted} mounted, ${u.existing} already there, ${u.copied} copied\n`);
    return 0;
  },
};
