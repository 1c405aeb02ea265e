/**
 * Image references on the command line: `oci:DIR[:TAG]` (an OCI layout directory) or a
 * registry reference.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { ImageStore } from './image-store.js';
import { openOciLayout } from './oci-layout-store.js';
import { openRegistryStore } from './registry-store.js';
import { RegistryClient } from '../registry/registry-client.js';
import { parseReference } from '../registry/reference.js';
import { loadCredentials } from '../registry/credentials.js';
import { readCaFiles, registryCaFiles } from '../registry/host-certs.js';

/** A store and the reference (tag or digest) inside it. */
export interface OpenedRef {
  store: ImageStore;
  reference: string;
}

/** How to reach registries. */
export interface RegistryAccess {
  /** Speak plain HTTP (`--plain-http`). */
  plainHttp?: boolean;
  /** Do not verify TLS certificates (`--source-insecure` / `--target-insecure`). */
  insecure?: boolean;
  /** Docker config with credentials (`~/.docker/config.json` or `$DOCKER_CONFIG`). */
  dockerConfigPath?: string;
  /** PEM CA bundle for TLS (default: the host's certificates under certs.d, see host-certs.ts). */
  ca?: Buffer;
}

/**
 * Open the store a reference names: `oci:DIR[:TAG]` (an OCI layout directory) or
 * `host[:port]/repo[:tag|@digest]` (a registry).
 */
export async function openImageRef(ref: string, options: { write: boolean } & RegistryAccess): Promise<OpenedRef> {
  if (!ref.startsWith('oci:')) {
    const r = parseReference(ref);
    const credentials = options.dockerConfigPath ? await loadCredentials(r.host, { dockerConfigPath: options.dockerConfigPath }) : undefined;
    const caFiles = options.plainHttp || options.ca ? [] : registryCaFiles(r);
    const ca = options.ca ?? (caFiles.length > 0 ? readCaFiles(caFiles) : undefined);
    const client = new RegistryClient(r.apiHost, {
      ...(options.plainHttp ? { plainHttp: true } : {}), ...(options.insecure ? { insecure: true } : {}),
      ...(credentials ? { credentials } : {}), ...(ca !== undefined ? { ca } : {}),
    });
    return { store: openRegistryStore(client, r.host, r.repo, { apiHost: r.apiHost, ...(credentials ? { credentials } : {}), caFiles }), reference: r.reference };
  }
  return openLocal(ref, options);
}

function openLocal(ref: string, options: { write: boolean }): OpenedRef {
  if (ref.startsWith('oci:')) {
    const rest = ref.slice(4);
    const at = rest.indexOf('@sha256:');
    if (at >= 0) return { store: openOciLayout(rest.slice(0, at), { create: options.write }), reference: rest.slice(at + 1) };
    const colon = rest.lastIndexOf(':');
    const dir = colon > 0 ? rest.slice(0, colon) : rest;
    const tag = colon > 0 ? rest.slice(colon + 1) : 'latest';
    return { store: openOciLayout(dir, { create: options.write }), reference: tag };
  }
  throw new UsageError('ERR_USAGE', `Cannot open image "${ref}"`);
}
