/**
 * A promise-based client of the snapshots gRPC API (the same proto files the server loads), for
 * tests that talk to bin/nydus-snapshotter or an in-process server the way containerd does.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSnapshotsService } from '../../src/snapshotter/snapshots-proto.js';

/** A mount as returned by Prepare, View and Mounts. */
export interface MountMessage { type: string; source: string; target: string; options: string[] }

/** An Info message. */
export interface InfoMessage { name: string; parent: string; kind: string; labels: Record<string, string>; created_at: { seconds: number; nanos: number } }

/** The calls of the snapshots service. */
export interface SnapshotsClient {
  prepare(key: string, parent: string, labels?: Record<string, string>): Promise<MountMessage[]>;
  view(key: string, parent: string, labels?: Record<string, string>): Promise<MountMessage[]>;
  mounts(key: string): Promise<MountMessage[]>;
  commit(name: string, key: string, labels?: Record<string, string>): Promise<void>;
  remove(key: string): Promise<void>;
  stat(key: string): Promise<InfoMessage>;
  update(info: { name: string; labels: Record<string, string> }, paths: string[]): Promise<InfoMessage>;
  list(filters?: string[]): Promise<InfoMessage[]>;
  usage(key: string): Promise<{ size: number; inodes: number }>;
  cleanup(): Promise<void>;
  close(): void;
}

/** gRPC status code of a failed call (undefined when it did not fail). */
export async function statusOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    const c = (e as grpc.ServiceError).code;
    return grpc.status[c];
  }
}

/** Connect to the snapshots service on unix socket `sock`. */
export function connectSnapshots(sock: string, snapshotter = 'nydus'): SnapshotsClient {
  const Ctor = loadSnapshotsService();
  const c = new Ctor(`unix://${sock}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void> & grpc.Client;
  const call = <T>(method: string, req: Record<string, unknown>): Promise<T> => new Promise((resolve, reject) => {
    c[method]!.call(c, { snapshotter, ...req }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
  return {
    prepare: async (key, parent, labels = {}) => (await call<{ mounts: MountMessage[] }>('Prepare', { key, parent, labels })).mounts,
    view: async (key, parent, labels = {}) => (await call<{ mounts: MountMessage[] }>('View', { key, parent, labels })).mounts,
    mounts: async (key) => (await call<{ mounts: MountMessage[] }>('Mounts', { key })).mounts,
    commit: async (name, key, labels = {}) => { await call('Commit', { name, key, labels }); },
    remove: async (key) => { await call('Remove', { key }); },
    stat: async (key) => (await call<{ info: InfoMessage }>('Stat', { key })).info,
    update: async (info, paths) => (await call<{ info: InfoMessage }>('Update', { info, update_mask: { paths } })).info,
    usage: (key) => call('Usage', { key }),
    cleanup: async () => { await call('Cleanup', {}); },
    list: (filters = []) => new Promise((resolve, reject) => {
      const out: InfoMessage[] = [];
      const stream = (c as unknown as { List(req: unknown): grpc.ClientReadableStream<{ info: InfoMessage[] }> }).List({ snapshotter, filters });
      stream.on('data', (m: { info: InfoMessage[] }) => out.push(...m.info));
      stream.on('error', reject);
      stream.on('end', () => resolve(out));
    }),
    close: () => c.close(),
  };
}
