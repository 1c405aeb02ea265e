/**
 * Image references on the command line: `oci:DIR[:TAG]` (an OCI layout directory).
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { ImageStore } from './image-store.js';
import { openOciLayout } from './oci-layout-store.js';

/** A store and the reference (tag or digest) inside it. */
export interface OpenedRef {
  store: ImageStore;
  reference: string;
}

/** Open the store a reference names. */
export function openImageRef(ref: string, options: { write: boolean }): OpenedRef {
  if (ref.startsWith('oci:')) {
    const rest = ref.slice(4);
    const at = rest.indexOf('@sha256:');
    if (at >= 0) return { store: openOciLayout(rest.slice(0, at), { create: options.write }), reference: rest.slice(at + 1) };
    const colon = rest.lastIndexOf(':');
    const dir = colon > 0 ? rest.slice(0, colon) : rest;
    const tag = colon > 0 ? rest.slice(colon + 1) : 'latest';
    return { store: openOciLayout(dir, { create: options.write }), reference: tag };
  }
  throw new UsageError('ERR_USAGE', `Cannot open image "${ref}": only oci:DIR[:TAG] references are supported by this build`);
}
