/**
 * The gRPC server of containerd's snapshots API (containerd.services.snapshots.v1.Snapshots) on
 * a unix socket, over a NydusSnapshotter. Errors become the gRPC status codes containerd's
 * errdefs maps back to its error classes (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
 * INVALID_ARGUMENT, UNAVAILABLE, UNKNOWN).
 * @module
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../util/logger.js';
import { errorClassOf, type ErrorClass } from './snapshot-error.js';
import { loadSnapshotsService } from './snapshots-proto.js';
import type { NydusSnapshotter } from './snapshotter.js';
import type { SnapshotInfo } from './snapshot-types.js';
import type { Mount } from './snapshot-mounts.js';

const STATUS_OF: Readonly<Record<ErrorClass, grpc.status>> = {
  'not-found': grpc.status.NOT_FOUND,
  'already-exists': grpc.status.ALREADY_EXISTS,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  unavailable: grpc.status.UNAVAILABLE,
  unknown: grpc.status.UNKNOWN,
};

/** Infos per List message. */
const LIST_BATCH = 100;

/** google.protobuf.Timestamp of a time in ms. */
function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** A snapshot Info message. */
function infoMessage(i: SnapshotInfo): object {
  return { name: i.name, parent: i.parent, kind: i.kind.toUpperCase(), created_at: timestamp(i.created), updated_at: timestamp(i.updated), labels: i.labels };
}

function mountMessages(ms: readonly Mount[]): object {
  return { mounts: ms.map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options })) };
}

interface KeyRequest { key: string; parent: string; name: string; labels: Record<string, string> }

/** A running server. */
export interface SnapshotterServer {
  /** The unix socket. */
  address: string;
  /** Stop taking calls (in-flight calls get 5 s) and remove the socket. */
  close(): Promise<void>;
}

/** Serve `snapshotter` on unix socket `address` (a stale socket file is replaced). */
export async function serveSnapshotter(address: string, snapshotter: NydusSnapshotter, logger: Logger): Promise<SnapshotterServer> {
  const service = loadSnapshotsService().service;
  const server = new grpc.Server();
  const fail = (method: string, e: unknown): grpc.ServiceError => {
    const cls = errorClassOf(e);
    const message = e instanceof Error ? e.message : String(e);
    if (cls === 'unknown') logger.error(`${method} failed`, { error: message });
    else logger.debug(`${method} answered ${cls}`, { error: message });
    return Object.assign(new Error(message), { code: STATUS_OF[cls], details: message, metadata: new grpc.Metadata() });
  };
  const unary = <T>(method: string, fn: (req: KeyRequest & Record<string, unknown>) => Promise<T> | T): grpc.handleUnaryCall<KeyRequest & Record<string, unknown>, T> =>
    (call, callback) => {
      const req = call.request;
      logger.debug(method, { key: req.key, parent: req.parent, name: req.name, labels: req.labels });
      Promise.resolve().then(() => fn(req)).then((res) => callback(null, res), (e: unknown) => callback(fail(method, e)));
    };
  const handlers: grpc.UntypedServiceImplementation = {
    Prepare: unary('Prepare', async (r) => mountMessages(await snapshotter.prepare(r.key, r.parent, r.labels ?? {}))),
    View: unary('View', async (r) => mountMessages(await snapshotter.view(r.key, r.parent, r.labels ?? {}))),
    Mounts: unary('Mounts', async (r) => mountMessages(await snapshotter.mounts(r.key))),
    Commit: unary('Commit', async (r) => { await snapshotter.commit(r.name, r.key, r.labels ?? {}); return {}; }),
    Remove: unary('Remove', async (r) => { await snapshotter.remove(r.key); return {}; }),
    Stat: unary('Stat', (r) => ({ info: infoMessage(snapshotter.stat(r.key)) })),
    Update: unary('Update', (r) => {
      const i = (r.info ?? {}) as { name?: string; labels?: Record<string, string> };
      const paths = ((r.update_mask ?? {}) as { paths?: string[] }).paths ?? [];
      return { info: infoMessage(snapshotter.update(i.name ?? '', i.labels ?? {}, paths)) };
    }),
    Usage: unary('Usage', async (r) => snapshotter.usage(r.key)),
    Cleanup: unary('Cleanup', async () => { await snapshotter.cleanup(); return {}; }),
    List: (call: grpc.ServerWritableStream<{ filters?: string[] }, unknown>) => {
      try {
        const all = snapshotter.list(call.request.filters ?? []);
        logger.debug('List', { filters: call.request.filters, found: all.length });
        for (let i = 0; i < all.length; i += LIST_BATCH) call.write({ info: all.slice(i, i + LIST_BATCH).map(infoMessage) });
        call.end();
      } catch (e) {
        call.emit('error', fail('List', e));
      }
    },
  };
  server.addService(service, handlers);
  mkdirSync(dirname(address), { recursive: true });
  if (existsSync(address)) rmSync(address, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${address}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      const t = setTimeout(() => server.forceShutdown(), 5000);
      server.tryShutdown(() => {
        clearTimeout(t);
        rmSync(address, { force: true });
        resolve();
      });
    }),
  };
}
