/**
 * Messages between a layer build on a worker thread (layer-build-worker.ts) and the thread that
 * feeds it the layer's bytes (layer-build.ts).
 * @module
 */
import { BackendError, FormatError, NydusError, UsageError } from '../util/errors.js';
import type { CreateOptions, CreateResult } from './create.js';

/** What the build is given: everything of `create` but the source and callbacks. */
export type LayerBuildOptions = Omit<CreateOptions, 'source' | 'onWarn' | 'type'>;

/** Feeder → worker. */
export type ToWorker =
  | { kind: 'start'; options: LayerBuildOptions }
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'end' }
  | { kind: 'abort'; error: WireError };

/** A project error, as it crosses the thread boundary. */
export interface WireError { name: string; code: string; message: string; path?: string; offset?: number; errno?: number }

/** Worker → feeder. */
export type FromWorker =
  | { kind: 'taken'; bytes: number }
  | { kind: 'warn'; code: string; message: string }
  | { kind: 'done'; result: CreateResult }
  | { kind: 'error'; error: WireError };

/** `e` as it can cross the thread boundary (any error; project errors keep code, path, offset). */
export function toWire(e: unknown): WireError {
  if (e instanceof NydusError) {
    return {
      name: e.name, code: e.code, message: e.message,
      ...(e.path !== undefined ? { path: e.path } : {}), ...(e.offset !== undefined ? { offset: e.offset } : {}), ...(e.errno !== undefined ? { errno: e.errno } : {}),
    };
  }
  return { name: 'Error', code: 'ERR_BUILD', message: e instanceof Error ? e.message : String(e) };
}

/** The project error a WireError stands for (its class where it is one of util/errors', its name kept). */
export function fromWire(w: WireError): NydusError {
  const o = { ...(w.path !== undefined ? { path: w.path } : {}), ...(w.offset !== undefined ? { offset: w.offset } : {}), ...(w.errno !== undefined ? { errno: w.errno } : {}) };
  let e: NydusError;
  switch (w.name) {
    case 'UsageError': e = new UsageError(w.code, w.message, o); break;
    case 'BackendError': e = new BackendError(w.code, w.message, o); break;
    case 'FormatError': e = new FormatError(w.code, w.message, o); break;
    default: e = new NydusError(w.code, w.message, o); e.name = w.name;
  }
  return e;
}
