/**
 * `nydusify profile push|ls|rm`: prefetch profiles of a Nydus image, published as OCI artifacts
 * whose subject is the image manifest (see src/nydusify/profile/).
 * @module
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { defaultDockerConfigPath } from '../../registry/credentials.js';
import { NydusError, UsageError } from '../../util/errors.js';
import { createStreamLogger } from '../../daemon/stream-logger.js';
import { openImageRef } from '../../nydusify/open-image-ref.js';
import { parsePlatforms } from '../../nydusify/platform.js';
import { parsePrefetchList, referrersTag } from '../../nydusify/profile/profile-format.js';
import { listProfiles, loadProfile, openProfileTarget, pushProfile, removeProfiles } from '../../nydusify/profile/profile-registry.js';
import { readStdin, str, type CommandSpec } from '../cli-args.js';

const USAGE = `profile push --target REF --prefetch-files FILE|-
       nydusify profile ls   --target REF
       nydusify profile rm   --target REF (--digest DIGEST | --all)
  (REF: host[:port]/repo[:tag|@digest] of a Nydus image; options: --plain-http, --target-insecure, --platform)`;

export const profileCommand: CommandSpec = {
  name: 'profile',
  summary: 'Publish, list and remove prefetch profiles of a Nydus image (OCI artifacts referring to it)',
  usage: USAGE,
  options: {
    target: { type: 'string', arg: 'ref', help: 'Nydus image (tag or digest); for an index, the manifest of --platform' },
    'prefetch-files': { type: 'string', arg: 'file|-', help: 'push: the list, one absolute path a line in access order ("-": stdin)' },
    digest: { type: 'string', arg: 'digest', help: 'rm: the profile to remove' },
    all: { type: 'boolean', help: 'rm: remove every profile of the image' },
    platform: { type: 'string', default: 'linux/amd64', arg: 'os/arch', help: 'Platform to pick from an index' },
    'plain-http': { type: 'boolean', help: 'Talk to the registry over plain HTTP' },
    'target-insecure': { type: 'boolean', help: 'Do not verify the registry\'s TLS certificate' },
  },
  async run(v, positionals) {
    const [action, ...extra] = positionals;
    if (action !== 'push' && action !== 'ls' && action !== 'rm') throw new UsageError('ERR_USAGE', `profile needs an action: push, ls or rm (got ${action === undefined ? 'none' : JSON.stringify(action)})`);
    if (extra.length > 0) throw new UsageError('ERR_USAGE', `profile ${action}: unexpected argument ${JSON.stringify(extra[0])}`);
    const target = str(v.target);
    if (!target) throw new UsageError('ERR_USAGE', `profile ${action} needs --target`);
    const [platform, ...more] = parsePlatforms(str(v.platform) ?? 'linux/amd64');
    if (!platform || more.length > 0) throw new UsageError('ERR_USAGE', '--platform takes one platform (os/arch[/variant])');
    let paths: string[] = [];
    if (action === 'push') {
      const file = str(v['prefetch-files']);
      if (!file) throw new UsageError('ERR_USAGE', 'profile push needs --prefetch-files FILE (or - for stdin)');
      let text: string;
      try {
        text = file === '-' ? await readStdin() : readFileSync(file, 'utf8');
      } catch (e) {
        throw new UsageError('ERR_USAGE', `Cannot read --prefetch-files ${file}: ${(e as Error).message}`);
      }
      try {
        paths = parsePrefetchList(text, file === '-' ? 'the list on stdin' : file);
      } catch (e) {
        throw new UsageError('ERR_USAGE', (e as Error).message);
      }
    }
    if (action === 'rm' && (str(v.digest) === undefined) === (v.all !== true)) throw new UsageError('ERR_USAGE', 'profile rm needs --digest DIGEST or --all (one of them)');
    const logger = createStreamLogger('warn');
    const opened = await openImageRef(target, {
      write: action !== 'ls', plainHttp: v['plain-http'] === true, insecure: v['target-insecure'] === true,
      dockerConfigPath: defaultDockerConfigPath(process.env, homedir()),
    });
    const t = await openProfileTarget(opened, platform);
    try {
      if (action === 'push') {
        const r = await pushProfile(t, paths, { logger });
        process.stdout.write(`pushed prefetch profile ${r.digest} (${paths.length} paths) for ${target} (${t.subject.digest}), found through the ${r.via === 'referrers-api' ? 'referrers API' : `referrers tag ${referrersTag(t.subject.digest)}`}\n`);
        return 0;
      }
      if (action === 'ls') {
        const { profiles } = await listProfiles(t, { logger });
        process.stdout.write(`${'DIGEST'.padEnd(71)}  ${'CREATED'.padEnd(24)}  PATHS\n`);
        for (const p of profiles) {
          let count: string;
          try {
            count = String((await loadProfile(t, p)).paths.length);
          } catch (e) {
            count = `invalid: ${e instanceof NydusError ? e.message.replace(/^Cannot use prefetch profile \S+: /, '') : (e as Error).message}`;
          }
          process.stdout.write(`${p.digest}  ${(p.created ?? '-').padEnd(24)}  ${count}\n`);
        }
        return 0;
      }
      const digest = str(v.digest);
      const r = await removeProfiles(t, digest !== undefined ? { digest } : { all: true }, { logger });
      for (const d of r.removed) process.stdout.write(`removed ${d}${r.undeletable.includes(d) ? ' (the registry does not allow deletes: the manifest stays, unlisted)' : ''}\n`);
      if (r.removed.length === 0) process.stdout.write(`no prefetch profiles for ${target}\n`);
      return 0;
    } finally {
      await t.client.close();
    }
  },
};
