/**
 * The snapshotter behind the gRPC service: containerd's snapshot semantics (kinds, parent chains,
 * labels, usage) over overlayfs directories under `<root>/snapshots/<id>/{fs,work}`, metadata in
 * `<root>/metadata.db`, and remote snapshots for the layers of Nydus images.
 *
 * Nydus images: when Prepare's labels (see layer-labels.ts) show that the layer is a Nydus data
 * blob or the Nydus bootstrap of an image in a registry, no active snapshot is made. Instead a
 * committed snapshot labelled `containerd.io/snapshot.ref=<target>` with the same parent is
 * created (for the bootstrap, holding `fs/image/image.boot`, the only layer downloaded), and
 * Prepare answers ALREADY_EXISTS: containerd then finds that snapshot and skips the layer.
 * A container's active snapshot (or a view) whose parents include a bootstrap snapshot is an
 * overlay over the image mounted by nydusd at `<root>/mnt/<bootstrap id>`; its writes go to its
 * own `fs` directory. The image is mounted when the first such snapshot needs it and unmounted
 * when the last one is removed (or committed).
 * @module
 */
import { chownSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { topMountAt } from '../fuse/mount.js';
import { MetadataStore } from './metadata-store.js';
import { SnapshotError } from './snapshot-error.js';
import { compileFilters } from './snapshot-filter.js';
import { LABEL_SNAPSHOT_REF, type NydusLayer, type SnapshotInfo, type SnapshotKind, type SnapshotRecord, type SnapshotUsage } from './snapshot-types.js';
import { lowerLayers, mountsFor, overlayHasIndex, type LayerPaths, type Mount } from './snapshot-mounts.js';
import { diskUsage } from './disk-usage.js';
import { LABEL_PULL_SECRET, layerHintOf, type LayerHint } from './layer-labels.js';
import type { ImageResolver } from './image-resolver.js';
import type { DaemonManager, MountSpec } from './daemon-manager.js';
import { nydusdConfigFor, type NydusdTemplate } from './nydusd-config.js';
import { RafsImage } from '../image/rafs-image.js';
import { fileSource } from '../image/byte-source.js';
import { ProfileSource, templateAllowsPrefetch, type PrefetchChoice } from './profile-source.js';
import type { TraceRecorder } from './trace-recorder.js';

/** What the snapshotter is made of. */
export interface SnapshotterOptions {
  /** Absolute, canonical root directory. */
  root: string;
  resolver: ImageResolver;
  daemons: DaemonManager;
  /** nydusd config template (filled per image). */
  nydusdTemplate: NydusdTemplate;
  logger: Logger;
  /** Records the start-up trace of every container made on a Nydus image (none: not recorded). */
  traces?: TraceRecorder;
  /** Prefetch lists of image mounts (per-container label, else the image's newest profile); default: one over `resolver`. */
  profiles?: ProfileSource;
}

/** Where the bootstrap of a bootstrap snapshot is, under its `fs`. */
const BOOTSTRAP_PATH = join('image', 'image.boot');

function info(r: SnapshotRecord): SnapshotInfo {
  return { name: r.name, parent: r.parent, kind: r.kind, created: r.created, updated: r.updated, labels: { ...r.labels } };
}

/** The containerd namespace a backend key starts with (`default/3/…` → `default`), '' when none. */
function namespaceOf(key: string): string {
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : '';
}

/** containerd's snapshot API over overlayfs directories and nydusd mounts. */
export class NydusSnapshotter {
  readonly #o: SnapshotterOptions;
  readonly #store: MetadataStore;
  readonly #log: Logger;
  readonly #paths: LayerPaths;
  readonly #indexOff = overlayHasIndex();
  readonly #remoteInFlight = new Map<string, Promise<boolean>>();
  readonly #profiles: ProfileSource;

  private constructor(o: SnapshotterOptions, store: MetadataStore) {
    this.#o = o;
    this.#profiles = o.profiles ?? new ProfileSource({ resolver: o.resolver, logger: o.logger.child({ component: 'prefetch-profile' }) });
    this.#store = store;
    this.#log = o.logger;
    this.#paths = {
      fsDir: (id) => join(o.root, 'snapshots', String(id), 'fs'),
      workDir: (id) => join(o.root, 'snapshots', String(id), 'work'),
    };
  }

  /**
   * Open the snapshotter on `root`: the metadata database, the directories, and the images that
   * active snapshots or views use, mounted again when their mounts are missing (a nydusd left
   * running by an earlier snapshotter is found and reused).
   */
  static async open(o: SnapshotterOptions): Promise<NydusSnapshotter> {
    for (const d of ['snapshots', 'mnt', 'cache']) mkdirSync(join(o.root, d), { recursive: true });
    const s = new NydusSnapshotter(o, MetadataStore.open(join(o.root, 'metadata.db')));
    try {
      const specs: MountSpec[] = [];
      for (const b of s.#imagesInUse().values()) specs.push(await s.#mountSpec(b));
      await o.daemons.pruneExcept(new Set(specs.map((m) => m.mountpoint)));
      await o.daemons.restore(specs);
    } catch (e) {
      await s.#store.close();
      throw e;
    }
    return s;
  }

  /** `<root>/mnt/<id>`: where nydusd mounts the image of bootstrap snapshot `id`. */
  imageMountpoint(id: number): string {
    return join(this.#o.root, 'mnt', String(id));
  }

  /** `<root>/snapshots/<id>`. */
  snapshotDir(id: number): string {
    return join(this.#o.root, 'snapshots', String(id));
  }

  // ------------------------------------------------------------------ Nydus images

  /** The nearest bootstrap snapshot among the parents of `r` (the image it runs on), if any. */
  #bootstrapUnder(r: SnapshotRecord): SnapshotRecord | undefined {
    if (r.parent === '') return undefined;
    for (const a of this.#store.chain(r.parent)) {
      if (a.nydus?.type === 'bootstrap') return a;
    }
    return undefined;
  }

  /** Bootstrap snapshots that active snapshots or views use, by name. */
  #imagesInUse(): Map<string, SnapshotRecord> {
    const out = new Map<string, SnapshotRecord>();
    for (const r of this.#store.list()) {
      if (r.kind === 'committed') continue;
      try {
        const b = this.#bootstrapUnder(r);
        if (b) out.set(b.name, b);
      } catch (e) {
        this.#log.warn('snapshot with a broken parent chain', { key: r.name, error: (e as Error).message });
      }
    }
    return out;
  }

  /**
   * How nydusd mounts the image of `bootstrap`. A prefetch list (`prefetch`) replaces the
   * image's own prefetch table: nydusd prefetches the listed files, in their order, and not the table.
   */
  async #mountSpec(bootstrap: SnapshotRecord, prefetch?: PrefetchChoice): Promise<MountSpec> {
    const layer = bootstrap.nydus as NydusLayer;
    const location = await this.#o.resolver.locate(layer.imageRef, layer.auth);
    const source = join(this.#paths.fsDir(bootstrap.id), BOOTSTRAP_PATH);
    return {
      mountpoint: this.imageMountpoint(bootstrap.id),
      source,
      config: nydusdConfigFor(this.#o.nydusdTemplate, location, join(this.#o.root, 'cache'), prefetch === undefined && this.#startupListed(source)),
      ...(prefetch ? { prefetchFiles: prefetch.paths } : {}),
    };
  }

  /**
   * At pull, once the bootstrap is here: when the image has a prefetch profile, nydusd fetches
   * its files into the blob cache now, while containerd finishes the pull and creates the
   * container, so that the first container's reads find them local or in flight.
   */
  async #warmAtPull(bootstrap: SnapshotRecord): Promise<void> {
    try {
      if (!templateAllowsPrefetch(this.#o.nydusdTemplate)) return;
      const layer = bootstrap.nydus as NydusLayer;
      const choice = await this.#profiles.profileOf(layer.imageRef, layer.auth, layer.layerDigest);
      if (!choice || this.#o.daemons.wanted().includes(this.imageMountpoint(bootstrap.id))) return;
      const spec = await this.#mountSpec(bootstrap, choice);
      await this.#o.daemons.warm({ ...spec, prefetchFiles: choice.paths });
    } catch (e) {
      this.#log.warn('cannot warm the cache at pull', { key: bootstrap.name, error: (e as Error).message });
    }
  }

  /** The prefetch list for mounting the image of `bootstrap` for snapshot `r` (none when it is mounted already). */
  async #prefetchFor(bootstrap: SnapshotRecord, r: SnapshotRecord): Promise<PrefetchChoice | undefined> {
    if (this.#o.daemons.wanted().includes(this.imageMountpoint(bootstrap.id)) || !templateAllowsPrefetch(this.#o.nydusdTemplate)) return undefined;
    const layer = bootstrap.nydus as NydusLayer;
    const choice = await this.#profiles.forMount(layer.imageRef, layer.auth, layer.layerDigest, r.labels);
    if (choice) this.#log.info('prefetching by list', { key: r.name, image: layer.imageRef, from: choice.from, paths: choice.paths.length });
    return choice;
  }

  /** Whether the bootstrap's prefetch table names files other than the root (unreadable: assumed so). */
  #startupListed(bootstrap: string): boolean {
    let image: RafsImage | undefined;
    try {
      image = new RafsImage(fileSource(bootstrap));
      const root = image.rootNid;
      return image.prefetchNids().some((nid) => nid !== root);
    } catch (e) {
      this.#log.warn('cannot read the prefetch table of a bootstrap', { bootstrap, error: (e as Error).message });
      return true;
    } finally {
      image?.close();
    }
  }

  /** Unmount the images no active snapshot or view uses any more. Queued at once (no await before), so a later mount comes after. */
  #releaseUnusedImages(): Promise<void> {
    const inUse = new Set([...this.#imagesInUse().values()].map((b) => this.imageMountpoint(b.id)));
    const jobs = this.#o.daemons.wanted().filter((mp) => !inUse.has(mp)).map((mp) => this.#o.daemons.unmount(mp));
    return Promise.all(jobs).then(() => undefined);
  }

  /** The committed remote snapshot for `target` over `parent`, if there is one. */
  #findRemote(target: string, parent: string): SnapshotRecord | undefined {
    const names = parent === '' ? this.#store.list().filter((r) => r.parent === '').map((r) => r.name) : this.#store.children(parent);
    for (const n of names) {
      const r = this.#store.get(n);
      if (r?.kind === 'committed' && r.nydus !== undefined && r.labels[LABEL_SNAPSHOT_REF] === target && r.parent === parent) return r;
    }
    return undefined;
  }

  /** What kind of Nydus layer the hint describes, if any. */
  async #nydusLayerType(hint: LayerHint): Promise<'blob' | 'bootstrap' | undefined> {
    if (hint.imageRef === undefined || hint.layerDigest === undefined) return undefined;
    if (hint.marked) return hint.marked;
    try {
      return await this.#o.resolver.classify(hint.imageRef, hint.layerDigest, hint.auth);
    } catch (e) {
      this.#log.warn('cannot read the image manifest; preparing a plain layer', { image: hint.imageRef, layer: hint.layerDigest, error: (e as Error).message });
      return undefined;
    }
  }

  /**
   * Make (or find) the committed remote snapshot of a Nydus layer. True when it exists afterwards
   * (Prepare then answers ALREADY_EXISTS); false when the layer is not a Nydus layer.
   */
  #prepareRemote(key: string, parent: string, labels: Record<string, string>, hint: LayerHint): Promise<boolean> {
    const target = hint.target as string;
    const flight = `${parent}\n${target}`;
    const running = this.#remoteInFlight.get(flight);
    if (running) return running;
    const p = (async (): Promise<boolean> => {
      if (this.#findRemote(target, parent)) return true;
      const type = await this.#nydusLayerType(hint);
      if (type === undefined) return false;
      if (parent !== '') {
        const pr = this.#store.require(parent, 'parent');
        if (pr.kind !== 'committed') throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot prepare ${JSON.stringify(key)}: parent ${JSON.stringify(parent)} is ${pr.kind}, not committed`);
      }
      const layer: NydusLayer = {
        type, imageRef: hint.imageRef as string, layerDigest: hint.layerDigest as string, ...(hint.auth !== undefined ? { auth: hint.auth } : {}),
      };
      const ns = namespaceOf(key);
      let name = `${ns === '' ? '' : `${ns}/`}remote/${target}`;
      if (this.#store.get(name)) name = `${name}/${Date.now()}`;
      const r = await this.#createSnapshot('committed', name, parent, { ...labels, [LABEL_SNAPSHOT_REF]: target }, async (dir) => {
        if (type === 'bootstrap') {
          // nydusd (when not running yet) starts, and the image's prefetch profile is looked up,
          // while the bootstrap downloads.
          this.#o.daemons.prestart();
          if (templateAllowsPrefetch(this.#o.nydusdTemplate)) this.#profiles.prepare(layer.imageRef, layer.auth, layer.layerDigest);
          await this.#o.resolver.fetchBootstrap(layer.imageRef, layer.layerDigest, layer.auth, join(dir, 'fs', BOOTSTRAP_PATH));
        }
      }, layer);
      this.#log.info('remote snapshot', { key, name: r.name, type, image: layer.imageRef, layer: layer.layerDigest });
      if (type === 'bootstrap') void this.#warmAtPull(r);
      return true;
    })();
    this.#remoteInFlight.set(flight, p);
    void p.finally(() => this.#remoteInFlight.delete(flight)).catch(() => undefined);
    return p;
  }

  // ------------------------------------------------------------------ snapshots

  /** Create the directory, then the record, then move the directory to its id. */
  async #createSnapshot(kind: SnapshotKind, name: string, parent: string, labels: Record<string, string>,
    fill: (dir: string) => Promise<void>, nydus?: NydusLayer): Promise<SnapshotRecord> {
    const tmp = mkdtempSync(join(this.#o.root, 'snapshots', 'new-'));
    let record: SnapshotRecord | undefined;
    try {
      mkdirSync(join(tmp, 'fs'), { mode: 0o755 });
      if (kind === 'active') mkdirSync(join(tmp, 'work'), { mode: 0o711 });
      await fill(tmp);
      const usage = kind === 'committed' ? await diskUsage(join(tmp, 'fs')) : undefined;
      record = this.#store.create({ kind, name, parent, labels: withoutSecret(labels), ...(usage ? { usage } : {}), ...(nydus ? { nydus } : {}) });
      renameSync(tmp, this.snapshotDir(record.id));
      return record;
    } catch (e) {
      if (record) {
        try { this.#store.remove(record.name); } catch { /* keep the first error */ }
      }
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** The lower directories of an active snapshot or view, top first, mounting its Nydus image first when it has one. */
  async #lowerPaths(r: SnapshotRecord): Promise<string[]> {
    const ancestors = r.parent === '' ? [] : this.#store.chain(r.parent);
    const lowers: string[] = [];
    for (const l of lowerLayers(ancestors, this.#paths)) {
      if (l.kind === 'dir') {
        lowers.push(l.path);
        continue;
      }
      const spec = await this.#mountSpec(l.bootstrap, await this.#prefetchFor(l.bootstrap, r));
      await this.#o.daemons.mount(spec);
      lowers.push(spec.mountpoint);
    }
    return lowers;
  }

  async #createActiveOrView(kind: 'active' | 'view', key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    const r = await this.#createSnapshot(kind, key, parent, labels, async () => undefined);
    try {
      const lowers = await this.#lowerPaths(r);
      if (kind === 'active' && this.#o.traces) {
        const b = this.#bootstrapUnder(r);
        if (b?.nydus) this.#o.traces.start(b.nydus.imageRef, key, this.imageMountpoint(b.id));
      }
      const top = lowers[0];
      if (top !== undefined) {
        // The root directory of the overlay is the upper one: give it the owner of the layer below, as containerd does.
        const st = statSync(top);
        chownSync(this.#paths.fsDir(r.id), st.uid, st.gid);
      }
      return mountsFor(r, lowers, this.#paths, { indexOff: this.#indexOff });
    } catch (e) {
      await this.remove(key).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Prepare an active snapshot `key` over committed `parent`. For a Nydus image layer it makes
   * the remote snapshot instead and throws ERR_REMOTE_SNAPSHOT (ALREADY_EXISTS).
   */
  async prepare(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    const hint = layerHintOf(labels);
    if (hint.target !== undefined && await this.#prepareRemote(key, parent, labels, hint)) {
      throw new SnapshotError('ERR_REMOTE_SNAPSHOT', `Cannot prepare ${JSON.stringify(key)}: target snapshot ${JSON.stringify(hint.target)} already exists (remote Nydus layer)`);
    }
    return this.#createActiveOrView('active', key, parent, labels);
  }

  /** A read-only view `key` of committed `parent`. */
  view(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#createActiveOrView('view', key, parent, labels);
  }

  /** The mounts of active snapshot or view `key`. */
  async mounts(key: string): Promise<Mount[]> {
    const r = this.#store.require(key);
    if (r.kind === 'committed') throw new SnapshotError('ERR_SNAPSHOT_KIND', `Cannot mount ${JSON.stringify(key)}: it is committed, not active or a view`);
    return mountsFor(r, await this.#lowerPaths(r), this.#paths, { indexOff: this.#indexOff });
  }

  /** Commit active snapshot `key` as `name`. */
  async commit(name: string, key: string, labels: Record<string, string>): Promise<void> {
    const a = this.#store.require(key, 'active snapshot');
    if (a.kind !== 'active') throw new SnapshotError('ERR_SNAPSHOT_KIND', `Cannot commit ${JSON.stringify(key)}: it is ${a.kind}, not active`);
    const usage = await diskUsage(this.#paths.fsDir(a.id));
    this.#store.commit(key, name, withoutSecret(labels), usage);
    rmSync(this.#paths.workDir(a.id), { recursive: true, force: true });
    await this.#releaseUnusedImages();
  }

  /** Remove `key` (refused while it has children), its directory, and the image mounts nothing uses any more. */
  async remove(key: string): Promise<void> {
    const r = this.#store.remove(key);
    const release = this.#releaseUnusedImages();
    const mp = this.imageMountpoint(r.id);
    // A bootstrap has no children when it is removed, so its mount (if this process made it) is released above.
    if (r.nydus?.type === 'bootstrap' && !this.#o.daemons.wanted().includes(mp)) await this.#o.daemons.unmount(mp);
    await release;
    try {
      rmSync(this.snapshotDir(r.id), { recursive: true, force: true });
    } catch (e) {
      this.#log.warn('cannot remove the snapshot directory (Cleanup will)', { key, error: (e as Error).message });
    }
    if (r.nydus?.type === 'blob') this.#pruneBlobCache(blobIdOf(r.nydus.layerDigest));
  }

  /**
   * Delete the blob cache files (`<root>/cache/<blob id>.*`) of blobs no Nydus layer snapshot
   * names any more: of `only`, or of every blob. An image still mounted keeps what it has open
   * (the files are only unlinked), and a later image with that blob fetches it again.
   */
  #pruneBlobCache(only?: string): void {
    const used = new Set(this.#store.list().flatMap((x) => (x.nydus?.type === 'blob' ? [blobIdOf(x.nydus.layerDigest)] : [])));
    const dir = join(this.#o.root, 'cache');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const id = /^([0-9a-f]{64})\./.exec(n)?.[1];
      if (id === undefined || used.has(id) || (only !== undefined && id !== only)) continue;
      try {
        rmSync(join(dir, n), { force: true });
        this.#log.debug('removed a blob cache file no snapshot uses', { file: n });
      } catch (e) {
        this.#log.warn('cannot remove a blob cache file', { file: n, error: (e as Error).message });
      }
    }
  }

  /** Information on `key`. */
  stat(key: string): SnapshotInfo {
    return info(this.#store.require(key));
  }

  /** Update the labels of `name` (see MetadataStore.update). */
  update(name: string, labels: Record<string, string>, fieldpaths: readonly string[]): SnapshotInfo {
    if (name === '') throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', 'Cannot update a snapshot: the name is empty');
    return info(this.#store.update(name, withoutSecret(labels), fieldpaths));
  }

  /** Snapshots matching any of `filters` (all without filters). */
  list(filters: readonly string[]): SnapshotInfo[] {
    const match = compileFilters(filters);
    return this.#store.list().map(info).filter(match);
  }

  /** Disk usage of `key`: measured for an active snapshot, recorded at commit otherwise. */
  async usage(key: string): Promise<SnapshotUsage> {
    const r = this.#store.require(key);
    if (r.kind === 'active') return diskUsage(this.#paths.fsDir(r.id));
    return r.usage ?? { size: 0, inodes: 0 };
  }

  /** Remove directories no snapshot owns (left by crashes or failed removals) and unused mountpoints. */
  async cleanup(): Promise<void> {
    const ids = new Set(this.#store.list().map((r) => String(r.id)));
    const inFlight = this.#remoteInFlight.size > 0;
    for (const d of readdirSync(join(this.#o.root, 'snapshots'))) {
      if (ids.has(d)) continue;
      if (d.startsWith('new-') && inFlight) continue;
      this.#log.info('cleanup: removing an orphaned snapshot directory', { dir: d });
      rmSync(join(this.#o.root, 'snapshots', d), { recursive: true, force: true });
    }
    if (!inFlight) this.#pruneBlobCache();
    const wanted = new Set(this.#o.daemons.wanted());
    for (const d of readdirSync(join(this.#o.root, 'mnt'))) {
      const mp = join(this.#o.root, 'mnt', d);
      if (wanted.has(mp) || await topMountAt(mp)) continue;
      try { rmdirSync(mp); } catch { /* not empty: leave it */ }
    }
  }

  /** Close the database. Image mounts stay (running containers use them). */
  async close(): Promise<void> {
    await this.#store.close();
  }
}

/** A Nydus blob's id: the hex sha256 of the blob layer. */
function blobIdOf(layerDigest: string): string {
  return layerDigest.replace(/^sha256:/, '');
}

/**
 * `labels` without the pull secret: a Nydus layer keeps it in its record (nydusd needs it), and
 * no snapshot shows it in the labels Stat and List return.
 */
function withoutSecret(labels: Readonly<Record<string, string>>): Record<string, string> {
  const { [LABEL_PULL_SECRET]: _secret, ...shown } = labels;
  return shown;
}
