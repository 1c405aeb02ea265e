/**
 * Real OCI images for tests, built with umoci and moved around with skopeo (Debian 12: umoci 0.4.7,
 * skopeo 1.9.3, GNU tar). Everything runs as child processes; nothing is left running.
 *
 * Layers: each layer directory is tarred with GNU tar (entries without a leading `./`, sorted,
 * numeric owners) and appended with `umoci raw add-layer`, which gzips it
 * (`application/vnd.oci.image.layer.v1.tar+gzip`) and records the diff_id. `umoci insert DIR /`
 * is deliberately not used: umoci 0.4.7 writes a `/` entry and, on this machine, a truncated tar
 * stream ("Unexpected EOF in archive" from GNU tar), and it refuses `.wh.` names.
 * Whiteouts are expressed in a layer directory the way the OCI spec stores them: an empty file
 * `.wh.NAME` deletes NAME of the lower layers, `.wh..wh..opq` in a directory makes it opaque.
 * @module
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

/** Result of running a command. */
interface RunResult { stdout: string; stderr: string }

/** Runs a command; rejects with its stderr on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

export const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MT_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

/** An OCI image layout plus the skopeo reference (`oci:DIR:TAG`) of one tag in it. */
export interface OciImage { layout: string; ref: string }

export interface BuildOciImageOptions {
  /** Work directory; the layout is created at `DIR/oci` (shared by several builds into the same dir). */
  dir: string;
  /** Layer directories, bottom first; each becomes exactly one layer (`.wh.*` files are whiteouts). */
  layers: string[];
  /** Tag in the layout (default `latest`). */
  name?: string;
  cmd?: string[];
  env?: string[];
  /** Default linux/amd64. */
  platform?: { os: string; architecture: string };
  /** Also store xattrs (GNU tar `--xattrs --xattrs-include=*`, pax format). Default false. */
  xattrs?: boolean;
}

/** Splits `oci:DIR:TAG` (or `oci:DIR`, tag `latest`). */
export function parseOciRef(ref: string): { layout: string; tag: string } {
  if (!ref.startsWith('oci:')) throw new Error(`not an oci: reference: ${ref}`);
  const rest = ref.slice(4);
  const i = rest.lastIndexOf(':');
  if (i <= 0 || rest.slice(i + 1).includes('/')) return { layout: rest, tag: 'latest' };
  return { layout: rest.slice(0, i), tag: rest.slice(i + 1) };
}

/** Reads a blob of a layout by digest. */
export function readBlob(layout: string, digest: string): Buffer {
  const [alg, hex] = digest.split(':');
  if (!alg || !hex) throw new Error(`bad digest ${digest}`);
  return fs.readFileSync(path.join(layout, 'blobs', alg, hex));
}

/** The descriptor that `index.json` of a layout holds for a tag. */
export function tagDescriptor(layout: string, tag: string): { mediaType: string; digest: string; size: number } {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
  };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!d) throw new Error(`tag ${tag} not in ${layout}/index.json`);
  return d;
}

/** The manifest JSON of `oci:DIR:TAG` (which must point at an image manifest). */
export function readManifest(ref: string): { config: { digest: string; size: number; mediaType: string }; layers: Array<{ mediaType: string; digest: string; size: number }> } {
  const { layout, tag } = parseOciRef(ref);
  const d = tagDescriptor(layout, tag);
  if (d.mediaType !== MT_MANIFEST) throw new Error(`${ref} is a ${d.mediaType}, not an image manifest`);
  return JSON.parse(readBlob(layout, d.digest).toString('utf8'));
}

/** Writes one uncompressed layer tar of `src` to `out`. */
export async function layerTar(src: string, out: string, xattrs = false): Promise<void> {
  const entries = fs.readdirSync(src).sort();
  if (entries.length === 0) {
    fs.writeFileSync(out, Buffer.alloc(1024)); // an empty tar: just the end-of-archive blocks
    return;
  }
  const args = ['--numeric-owner', '--sort=name', '-C', src, '-cf', out];
  if (xattrs) args.unshift('--format=posix', '--xattrs', '--xattrs-include=*');
  await run('tar', [...args, '--', ...entries]);
}

/** Builds (or adds a tag to) an OCI layout at `DIR/oci` from layer directories. */
export async function buildOciImage(opts: BuildOciImageOptions): Promise<OciImage> {
  const layout = path.resolve(opts.dir, 'oci');
  const tag = opts.name ?? 'latest';
  const image = `${layout}:${tag}`;
  fs.mkdirSync(opts.dir, { recursive: true });
  if (!fs.existsSync(path.join(layout, 'index.json'))) await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  for (const [i, src] of opts.layers.entries()) {
    if (!fs.statSync(src).isDirectory()) throw new Error(`layer ${i}: ${src} is not a directory`);
    const tarFile = path.join(opts.dir, `.layer-${tag}-${i}.tar`);
    try {
      await layerTar(src, tarFile, opts.xattrs ?? false);
      await run('umoci', ['raw', 'add-layer', '--image', image, '--history.created_by', `test layer ${i}: ${path.basename(src)}`, tarFile]);
    } finally {
      fs.rmSync(tarFile, { force: true });
    }
  }
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const cfg = ['config', '--image', image, '--os', platform.os, '--architecture', platform.architecture];
  for (const c of opts.cmd ?? []) cfg.push('--config.cmd', c);
  for (const e of opts.env ?? []) cfg.push('--config.env', e);
  await run('umoci', cfg);
  await run('umoci', ['gc', '--layout', layout]);
  return { layout, ref: `oci:${image}` };
}

/**
 * The same image with zstd layers (`tar+zstd`), copied by skopeo 1.9.3
 * (`--dest-compress-format zstd --dest-compress`) into another layout (default `<layout>-zstd`, same tag).
 * diff_ids (config) are unchanged; layer digests and sizes change.
 */
export async function toZstdLayers(ref: string, opts: { layout?: string; tag?: string } = {}): Promise<OciImage> {
  const src = parseOciRef(ref);
  const layout = path.resolve(opts.layout ?? `${src.layout}-zstd`);
  const dst = `oci:${layout}:${opts.tag ?? src.tag}`;
  await run('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', '--dest-compress', ref, dst]);
  const m = readManifest(dst);
  const bad = m.layers.filter((l) => l.mediaType !== MT_LAYER_ZSTD);
  if (bad.length) throw new Error(`skopeo left non-zstd layers: ${bad.map((l) => l.mediaType).join(', ')}`);
  return { layout, ref: dst };
}

/** Registry access options for skopeo. */
export interface RegistryAccess {
  /** Default: true when certDir is given, else false (plain HTTP or unverified TLS). */
  tlsVerify?: boolean;
  /** `user:pass` */
  creds?: string;
  /** A directory with `ca.crt` (and optionally client certs), for TLS registries. */
  certDir?: string;
}

function accessArgs(prefix: 'dest-' | 'src-' | '', o: RegistryAccess): string[] {
  const a = [`--${prefix}tls-verify=${o.tlsVerify ?? o.certDir !== undefined}`];
  if (o.creds !== undefined) a.push(`--${prefix}creds`, o.creds);
  if (o.certDir !== undefined) a.push(`--${prefix}cert-dir`, o.certDir);
  return a;
}

function dockerRef(target: string): string {
  return target.startsWith('docker://') ? target : `docker://${target}`;
}

/**
 * Pushes `oci:DIR:TAG` to `host:port/repo:tag`. When the tag points at an index (or `all`), all
 * its images are pushed with `--all` (as one tag). Returns the digest of what was pushed.
 */
export async function pushImage(ref: string, target: string, opts: RegistryAccess & { all?: boolean } = {}): Promise<{ digest: string }> {
  const { layout, tag } = parseOciRef(ref);
  const all = opts.all ?? tagDescriptor(layout, tag).mediaType === MT_INDEX;
  const digestFile = path.join(layout, `.pushed-${process.pid}-${Date.now()}`);
  try {
    const args = ['copy', '-q', '--digestfile', digestFile, ...accessArgs('dest-', opts)];
    if (all) args.push('--all', '--preserve-digests');
    await run('skopeo', [...args, ref, dockerRef(target)]);
    return { digest: fs.readFileSync(digestFile, 'utf8').trim() };
  } finally {
    fs.rmSync(digestFile, { force: true });
  }
}

/** `skopeo inspect [--raw] docker://target`, parsed. */
export async function skopeoInspect(target: string, opts: RegistryAccess & { raw?: boolean } = {}): Promise<any> {
  const args = ['inspect', ...accessArgs('', opts)];
  if (opts.raw) args.push('--raw');
  const { stdout } = await run('skopeo', [...args, dockerRef(target)]);
  return JSON.parse(stdout);
}

/**
 * An OCI index with a linux/amd64 and a linux/arm64 image (same layers; the architecture is only
 * metadata here), tagged `name` (default `multi`) in `DIR/oci`. Push it with pushImage (uses `--all`).
 */
export async function buildTwoPlatformIndex(opts: Omit<BuildOciImageOptions, 'platform' | 'name'> & { name?: string }): Promise<OciImage & { manifests: { amd64: string; arm64: string }; indexDigest: string }> {
  const name = opts.name ?? 'multi';
  const descs: Array<{ mediaType: string; digest: string; size: number; platform: { architecture: string; os: string } }> = [];
  let layout = '';
  for (const architecture of ['amd64', 'arm64']) {
    const img = await buildOciImage({ ...opts, name: `${name}-${architecture}`, platform: { os: 'linux', architecture } });
    layout = img.layout;
    const d = tagDescriptor(img.layout, `${name}-${architecture}`);
    descs.push({ mediaType: MT_MANIFEST, digest: d.digest, size: d.size, platform: { architecture, os: 'linux' } });
  }
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT_INDEX, manifests: descs }));
  const hex = createHash('sha256').update(body).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), body);
  const indexPath = path.join(layout, 'index.json');
  const top = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  top.manifests = top.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== name);
  top.manifests.push({ mediaType: MT_INDEX, digest: `sha256:${hex}`, size: body.length, annotations: { 'org.opencontainers.image.ref.name': name } } as never);
  fs.writeFileSync(indexPath, JSON.stringify(top));
  return {
    layout, ref: `oci:${layout}:${name}`, indexDigest: `sha256:${hex}`,
    manifests: { amd64: descs[0]!.digest, arm64: descs[1]!.digest },
  };
}

/** A rootfs with /bin/busybox (busybox-static) and sh, ls, cat, echo symlinks. Returns `dir`. */
export function busyboxRootfs(dir: string, applets: string[] = ['sh', 'ls', 'cat', 'echo']): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const src = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!src) throw new Error('busybox not found: install busybox-static (scripts/setup.sh)');
  fs.copyFileSync(src, path.join(bin, 'busybox'));
  fs.chmodSync(path.join(bin, 'busybox'), 0o755);
  for (const a of applets) {
    const l = path.join(bin, a);
    fs.rmSync(l, { force: true });
    fs.symlinkSync('busybox', l);
  }
  return dir;
}
