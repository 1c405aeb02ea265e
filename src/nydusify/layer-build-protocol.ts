/**
 * Messages between a layer build on a worker thread (layer-build-worker.ts) and the thread that
 * feeds it the layer's bytes (layer-build.ts).
 * @module
 */
import type { CreateOptions, CreateResult } from '../builder/create.js';

/** What the build is given: everything of `create` but the source and callbacks. */
export type LayerBuildOptions = Omit<CreateOptions, 'source' | 'onWarn' | 'type'>;

/** Feeder → worker. */
export type ToWorker =
  | { kind: 'start'; options: LayerBuildOptions }
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'end' }
  | { kind: 'abort'; message: string };

/** A project error, as it crosses the thread boundary. */
export interface WireError { name: string; code: string; message: string; path?: string; offset?: number; errno?: number }

/** Worker → feeder. */
export type FromWorker =
  | { kind: 'taken'; bytes: number }
  | { kind: 'warn'; code: string; message: string }
  | { kind: 'done'; result: CreateResult }
  | { kind: 'error'; error: WireError };
