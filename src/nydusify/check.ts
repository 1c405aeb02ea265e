/**
 * `nydusify check`: the three rules of nydusify's checker on a converted image.
 * 1. Manifest: the last layer is the bootstrap layer; every other layer is a Nydus blob layer;
 *    the config has one diff_id per layer; source and target `config.config` are equal
 *    (ignoring ArgsEscaped).
 * 2. Bootstrap: the bootstrap passes `check`, and every blob it references is a layer.
 * 3. File system (with a source): the target mounted by nydusd equals the source rootfs (the
 *    source layers applied in order): path set, type, mode, owner, size, rdev, symlink target,
 *    xattrs and content; not mtime.
 * @module
 */
import { rmSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { RafsImage } from '../image/rafs-image.js';
import { fileSource } from '../image/byte-source.js';
import { checkImage } from '../image/check-image.js';
import type { ImageStore } from './image-store.js';
import { bootstrapLayerOf, fetchBootstrap, readConfig, resolveManifest } from './image-parts.js';
import { applyLayer } from './apply-layer.js';
import { compareTrees } from './tree-compare.js';
import { nydusdConfigFor, startNydusdMount, workSubdir } from './nydusd-runner.js';
import { ANNOTATION_NYDUS_BLOB, MEDIA_NYDUS_BLOB, type ImageConfig, type Manifest } from './oci-types.js';
import type { PlatformSpec } from './platform.js';

/** Options of a check. */
export interface CheckOptions {
  workDir: string;
  nydusd: string;
  plainHttp: boolean;
  targetInsecure: boolean;
  platform: PlatformSpec;
  /** Progress lines. */
  onProgress?: (line: string) => void;
}

/** What a check found. */
export interface CheckResult {
  /** Rule 1 and 2 violations, one line each. */
  problems: string[];
  /** Rule 3 differences, one line each, path first. */
  diffs: string[];
  /** Entries compared by rule 3 (0 without a source). */
  entries: number;
  /** Layers of the target. */
  layers: number;
}

function withoutArgsEscaped(c: Record<string, unknown> | undefined): Record<string, unknown> {
  const { ArgsEscaped: _ignored, ...rest } = c ?? {};
  return rest;
}

/** Rule 1 on the target manifest and config (and the source config when given). */
export function checkManifestRules(target: Manifest, targetConfig: ImageConfig, sourceConfig: ImageConfig | undefined): string[] {
  const problems: string[] = [];
  const n = target.layers.length;
  try {
    bootstrapLayerOf(target, 'the target');
  } catch (e) {
    problems.push(`manifest: ${(e as Error).message}`);
  }
  target.layers.slice(0, Math.max(0, n - 1)).forEach((l, k) => {
    if (l.mediaType !== MEDIA_NYDUS_BLOB) problems.push(`manifest: layer ${k} (${l.digest}) has media type ${l.mediaType}, expected ${MEDIA_NYDUS_BLOB}`);
    if (l.annotations?.[ANNOTATION_NYDUS_BLOB] !== 'true') problems.push(`manifest: layer ${k} (${l.digest}) lacks the annotation ${ANNOTATION_NYDUS_BLOB}: "true"`);
  });
  const diffIds = targetConfig.rootfs?.diff_ids?.length ?? 0;
  if (diffIds !== n) problems.push(`manifest: the config lists ${diffIds} diff_ids for ${n} layers`);
  if (sourceConfig && !isDeepStrictEqual(withoutArgsEscaped(sourceConfig.config), withoutArgsEscaped(targetConfig.config))) {
    problems.push(`manifest: config.config differs: source ${JSON.stringify(withoutArgsEscaped(sourceConfig.config))}, target ${JSON.stringify(withoutArgsEscaped(targetConfig.config))}`);
  }
  return problems;
}

/** Rule 2 on a fetched bootstrap. */
export function checkBootstrapRules(bootstrap: string, target: Manifest): string[] {
  const problems: string[] = [];
  let image: RafsImage;
  try {
    image = new RafsImage(fileSource(bootstrap));
    checkImage(image);
  } catch (e) {
    return [`bootstrap: ${(e as Error).message}`];
  }
  const layers = new Set(target.layers.map((l) => l.digest.replace(/^sha256:/, '')));
  for (const b of image.blobs) {
    if (!layers.has(b.entry.blobId)) problems.push(`bootstrap: blob ${b.entry.blobId} (blob table entry ${b.index}) is not a layer of the target manifest`);
  }
  return problems;
}

/** Run the checks of `target` (against `source` when given). */
export async function checkImageRules(
  target: { store: ImageStore; reference: string },
  source: { store: ImageStore; reference: string } | undefined,
  o: CheckOptions,
): Promise<CheckResult> {
  const say = (s: string): void => o.onProgress?.(s);
  const tgt = await resolveManifest(target.store, target.reference, { platform: o.platform, nydus: true });
  const tgtConfig = await readConfig(target.store, tgt.manifest);
  const src = source ? await resolveManifest(source.store, source.reference, { platform: o.platform, nydus: false }) : undefined;
  const srcConfig = source && src ? await readConfig(source.store, src.manifest) : undefined;
  const result: CheckResult = { problems: checkManifestRules(tgt.manifest, tgtConfig, srcConfig), diffs: [], entries: 0, layers: tgt.manifest.layers.length };
  say(`manifest rule: ${result.problems.length === 0 ? 'ok' : `${result.problems.length} problem(s)`}`);
  if (result.problems.length > 0) return result;

  const work = workSubdir(o.workDir, `check-${tgt.digest.replace(/^sha256:/, '').slice(0, 16)}`);
  const boot = join(work, 'image.boot');
  await fetchBootstrap(target.store, bootstrapLayerOf(tgt.manifest, target.store.name), boot);
  result.problems.push(...checkBootstrapRules(boot, tgt.manifest));
  say(`bootstrap rule: ${result.problems.length === 0 ? 'ok' : `${result.problems.length} problem(s)`}`);
  if (result.problems.length > 0 || !source || !src) return result;

  const rootfs = join(work, 'source-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  workSubdir(work, 'source-rootfs');
  for (const l of src.manifest.layers) {
    const s = await applyLayer(rootfs, source.store.blobStream(l));
    say(`applied source layer ${l.digest} (${s.entries} entries, ${s.whiteouts} whiteouts)`);
  }
  const mnt = join(work, 'mnt');
  const d = await startNydusdMount({
    nydusd: o.nydusd, bootstrap: boot, mountpoint: mnt, configPath: join(work, 'nydusd.json'), stdio: 'pipe',
    config: nydusdConfigFor(target.store.location, { plainHttp: o.plainHttp, insecure: o.targetInsecure, cacheDir: workSubdir(work, 'cache') }),
  });
  try {
    say(`mounted the target with nydusd (pid ${d.pid}) at ${d.mountpoint}`);
    const cmp = await compareTrees(rootfs, d.mountpoint);
    result.diffs = cmp.diffs;
    result.entries = cmp.entries;
  } finally {
    await d.stop();
  }
  rmSync(rootfs, { recursive: true, force: true });
  return result;
}
