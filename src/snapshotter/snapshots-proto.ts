/**
 * The snapshots service definition, loaded from the `.proto` files in `proto/` at the repository
 * root (found relative to this module: src/snapshotter/ and dist/snapshotter/ are both two levels
 * under the root).
 * @module
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The `proto/` directory of this checkout. */
export function protoDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
}

/** How messages look in JavaScript: snake_case fields, enums as names, int64 as numbers, defaults filled in. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** containerd.services.snapshots.v1.Snapshots, ready for Server.addService or a client. */
export function loadSnapshotsService(): grpc.ServiceClientConstructor {
  const dir = protoDir();
  const def = protoLoader.loadSync(resolve(dir, 'services/snapshots/v1/snapshots.proto'), { ...LOADER_OPTIONS, includeDirs: [dir] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } };
  return pkg.containerd.services.snapshots.v1.Snapshots;
}
