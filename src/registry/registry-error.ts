/**
 * Errors of the OCI distribution client. Codes:
 * - `ERR_BAD_REFERENCE` an image reference cannot be parsed;
 * - `ERR_REGISTRY_UNAUTHORIZED` 401/403 after the auth flow (wrong or missing credentials);
 * - `ERR_REGISTRY_NOT_FOUND` blob, manifest or repository unknown (404);
 * - `ERR_REGISTRY_OUT_OF_RANGE` a ranged read runs past the end of the blob;
 * - `ERR_REGISTRY_STATUS` another unexpected HTTP status;
 * - `ERR_REGISTRY_TIMEOUT`, `ERR_REGISTRY_CONNECTION` network failures (after retries);
 * - `ERR_REGISTRY_BAD_RESPONSE` a malformed answer (short body, bad headers, bad token);
 * - `ERR_DIGEST_MISMATCH` content does not match its digest;
 * - `ERR_NO_PLATFORM` an index has no manifest for the asked platform;
 * - `ERR_ABORTED` the caller's signal fired; `ERR_CLOSED` the client was closed.
 * @module
 */
import { NydusError, type NydusErrorOptions } from '../util/errors.js';

/** Options of a RegistryError. */
export interface RegistryErrorOptions extends NydusErrorOptions {
  /** HTTP status of the answer, when there was one. */
  status?: number;
}

/** A failure talking to an OCI registry. */
export class RegistryError extends NydusError {
  readonly status: number | undefined;
  constructor(code: string, message: string, options: RegistryErrorOptions = {}) {
    super(code, message, options);
    this.status = options.status;
  }
}
