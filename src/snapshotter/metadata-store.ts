/**
 * The snapshotter's metadata in an embedded LMDB database (`<root>/metadata.db`): one record per
 * snapshot keyed by its key or name, an index of children per parent, and the sequence of
 * directory ids. Every change is one synchronous LMDB transaction, so a crash leaves either the
 * old or the new state, and the data survives restarts. The rules are containerd's: parents must
 * be committed, keys are unique, only active snapshots commit, snapshots with children stay.
 * @module
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { SnapshotError } from './snapshot-error.js';
import type { NydusLayer, SnapshotKind, SnapshotRecord, SnapshotUsage } from './snapshot-types.js';

/** What a new snapshot is made of. */
export interface NewSnapshot {
  kind: SnapshotKind;
  name: string;
  /** Committed parent, '' for none. */
  parent: string;
  labels: Record<string, string>;
  /** Usage of a snapshot created committed (remote snapshots). */
  usage?: SnapshotUsage;
  nydus?: NydusLayer;
}

/** Longest key or label accepted (containerd caps a label pair at 4096 bytes). */
const MAX_LABEL_BYTES = 4096;

/** Labels without empty values (an empty value deletes a label, as in containerd). */
export function cleanLabels(labels: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (v === '') continue;
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_BYTES) {
      throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot use label ${JSON.stringify(k)}: key and value are longer than ${MAX_LABEL_BYTES} bytes`);
    }
    out[k] = v;
  }
  return out;
}

function notFound(what: string, key: string): SnapshotError {
  return new SnapshotError('ERR_SNAPSHOT_NOT_FOUND', `Cannot find ${what} ${JSON.stringify(key)}: no such snapshot`);
}

/** The snapshot database. */
export class MetadataStore {
  readonly #root: RootDatabase;
  readonly #snapshots: Database<SnapshotRecord, string>;
  readonly #children: Database<string, string>;
  readonly #meta: Database<number, string>;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#snapshots = root.openDB<SnapshotRecord, string>({ name: 'snapshots', encoding: 'msgpack' });
    this.#children = root.openDB<string, string>({ name: 'children', dupSort: true, encoding: 'string' });
    this.#meta = root.openDB<number, string>({ name: 'meta', encoding: 'msgpack' });
  }

  /** Open (or create) the database file `path`, readable by its owner only (it holds pull secrets). */
  static open(path: string): MetadataStore {
    mkdirSync(dirname(path), { recursive: true });
    // Created owner-only before lmdb writes anything into it (an existing file is tightened too).
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
    const store = new MetadataStore(open({ path, maxDbs: 8, compression: false }));
    try { chmodSync(`${path}-lock`, 0o600); } catch { /* not created by this lmdb version */ }
    return store;
  }

  /** The record of `key`, if any. */
  get(key: string): SnapshotRecord | undefined {
    return this.#snapshots.get(key);
  }

  /** The record of `key`; throws ERR_SNAPSHOT_NOT_FOUND. */
  require(key: string, what = 'snapshot'): SnapshotRecord {
    const r = this.get(key);
    if (!r) throw notFound(what, key);
    return r;
  }

  /** `key`'s record followed by its ancestors, nearest first. */
  chain(key: string): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    const seen = new Set<string>();
    for (let name = key; name !== ''; ) {
      if (seen.has(name)) throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot walk the parents of ${JSON.stringify(key)}: ${JSON.stringify(name)} is its own ancestor`);
      seen.add(name);
      const r = this.require(name, out.length === 0 ? 'snapshot' : 'parent');
      out.push(r);
      name = r.parent;
    }
    return out;
  }

  /** Names of the snapshots whose parent is `name`. */
  children(name: string): string[] {
    return [...this.#children.getValues(name)];
  }

  /** Every record, in key order. */
  list(): SnapshotRecord[] {
    return [...this.#snapshots.getRange()].map((e) => e.value);
  }

  /** Create a snapshot with the next directory id. */
  create(s: NewSnapshot): SnapshotRecord {
    if (s.name === '') throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', 'Cannot create a snapshot: the key is empty');
    const labels = cleanLabels(s.labels);
    return this.#root.transactionSync(() => {
      if (this.#snapshots.doesExist(s.name)) throw new SnapshotError('ERR_SNAPSHOT_EXISTS', `Cannot create snapshot ${JSON.stringify(s.name)}: it already exists`);
      if (s.parent !== '') {
        const p = this.#snapshots.get(s.parent);
        if (!p) throw notFound('parent', s.parent);
        if (p.kind !== 'committed') throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot create snapshot ${JSON.stringify(s.name)}: parent ${JSON.stringify(s.parent)} is ${p.kind}, not committed`);
      }
      const id = (this.#meta.get('seq') ?? 0) + 1;
      this.#meta.putSync('seq', id);
      const now = Date.now();
      const r: SnapshotRecord = {
        id, name: s.name, parent: s.parent, kind: s.kind, created: now, updated: now, labels,
        ...(s.usage ? { usage: s.usage } : {}), ...(s.nydus ? { nydus: s.nydus } : {}),
      };
      this.#snapshots.putSync(s.name, r);
      if (s.parent !== '') this.#children.putSync(s.parent, s.name);
      return r;
    });
  }

  /** Commit active snapshot `key` as `name`: same directory, new labels (not inherited), given usage. */
  commit(key: string, name: string, labels: Readonly<Record<string, string>>, usage: SnapshotUsage): SnapshotRecord {
    if (name === '') throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot commit ${JSON.stringify(key)}: the name is empty`);
    const clean = cleanLabels(labels);
    return this.#root.transactionSync(() => {
      const a = this.#snapshots.get(key);
      if (!a) throw notFound('active snapshot', key);
      if (a.kind !== 'active') throw new SnapshotError('ERR_SNAPSHOT_KIND', `Cannot commit ${JSON.stringify(key)}: it is ${a.kind}, not active`);
      if (this.#snapshots.doesExist(name)) throw new SnapshotError('ERR_SNAPSHOT_EXISTS', `Cannot commit ${JSON.stringify(key)} as ${JSON.stringify(name)}: that name already exists`);
      const now = Date.now();
      const c: SnapshotRecord = { id: a.id, name, parent: a.parent, kind: 'committed', created: now, updated: now, labels: clean, usage, ...(a.nydus ? { nydus: a.nydus } : {}) };
      this.#snapshots.removeSync(key);
      this.#snapshots.putSync(name, c);
      if (a.parent !== '') {
        this.#children.removeSync(a.parent, key);
        this.#children.putSync(a.parent, name);
      }
      return c;
    });
  }

  /** Remove `key`; refuses (ERR_SNAPSHOT_HAS_CHILDREN) while other snapshots build on it. */
  remove(key: string): SnapshotRecord {
    return this.#root.transactionSync(() => {
      const r = this.#snapshots.get(key);
      if (!r) throw notFound('snapshot', key);
      const kids = this.#children.getValuesCount(key);
      if (kids > 0) throw new SnapshotError('ERR_SNAPSHOT_HAS_CHILDREN', `Cannot remove snapshot ${JSON.stringify(key)}: ${kids} snapshot(s) have it as parent`);
      this.#snapshots.removeSync(key);
      if (r.parent !== '') this.#children.removeSync(r.parent, key);
      return r;
    });
  }

  /**
   * Update the labels of `name` as containerd does: `fieldpaths` `labels.<key>` set (or, with no
   * value, delete) one label, `labels` replaces all; no paths replaces all. Other fields are immutable.
   */
  update(name: string, labels: Readonly<Record<string, string>>, fieldpaths: readonly string[]): SnapshotRecord {
    return this.#root.transactionSync(() => {
      const r = this.#snapshots.get(name);
      if (!r) throw notFound('snapshot', name);
      let next: Record<string, string> = { ...r.labels };
      if (fieldpaths.length === 0) next = { ...labels };
      for (const p of fieldpaths) {
        if (p.startsWith('labels.')) {
          const k = p.slice('labels.'.length);
          next[k] = labels[k] ?? '';
        } else if (p === 'labels') {
          next = { ...labels };
        } else {
          throw new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot update field ${JSON.stringify(p)} of snapshot ${JSON.stringify(name)}: only labels can change`);
        }
      }
      const u: SnapshotRecord = { ...r, labels: cleanLabels(next), updated: Date.now() };
      this.#snapshots.putSync(name, u);
      return u;
    });
  }

  /** Close the database. */
  async close(): Promise<void> {
    await this.#root.close();
  }
}
