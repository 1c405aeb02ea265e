/**
 * Builds one tar layer into a Nydus blob and bootstrap (`create`, tar-rafs) on a worker thread,
 * fed from this thread: decompressing, chunking, digesting and compressing a layer is CPU work,
 * and layers built on their own threads use every core, while this thread only moves the bytes
 * from the source. At most IN_FLIGHT bytes wait for the worker at any time.
 *
 * A source that fails fails the build with the source's error (code, class and offset kept), in
 * the words of the builder, which names the tar entry it was reading; nothing is left under the
 * build's output names (create writes temporary names and renames them only when complete).
 * @module
 */
import type { CreateResult } from './create.js';
import { FormatError } from '../util/errors.js';
import { siblingModuleUrl, startModuleWorker } from '../util/module-worker.js';
import { fromWire, toWire, type FromWorker, type LayerBuildOptions, type ToWorker } from './layer-build-protocol.js';

export type { LayerBuildOptions } from './layer-build-protocol.js';

const WORKER_URL = siblingModuleUrl(import.meta.url, 'layer-build-worker');
/** Bytes posted to the worker and not yet taken by its build. */
const IN_FLIGHT = 16 << 20;
/** Bytes gathered into one message. */
const BATCH = 1 << 20;


/** Build the tar layer read from `source` (any compression `create` detects) on a worker thread. */
export async function buildLayer(source: AsyncIterable<Uint8Array>, options: LayerBuildOptions, onWarn?: (code: string, message: string) => void): Promise<CreateResult> {
  const worker = startModuleWorker(WORKER_URL);
  const post = (m: ToWorker, transfer: ArrayBuffer[] = []): void => worker.postMessage(m, transfer);
  let inFlight = 0;
  let resume: (() => void) | undefined;
  let settled = false;
  let sourceError: unknown;
  const finished = new Promise<CreateResult>((resolve, reject) => {
    // The build's error names where in the layer a failure hit, also one of the source's (the
    // worker rethrows it from its end of the stream); the source's own error stands only when
    // the thread itself failed.
    const fail = (e: unknown, threadFailed = false): void => {
      if (settled) return;
      settled = true;
      resume?.();
      reject(threadFailed && sourceError !== undefined ? sourceError : e);
    };
    worker.on('message', (m: FromWorker) => {
      switch (m.kind) {
        case 'taken':
          inFlight -= m.bytes;
          if (inFlight <= IN_FLIGHT) resume?.();
          return;
        case 'warn':
          onWarn?.(m.code, m.message);
          return;
        case 'done':
          if (settled) return;
          settled = true;
          resolve(m.result);
          return;
        case 'error':
          fail(fromWire(m.error));
      }
    });
    worker.on('error', (e) => fail(new FormatError('ERR_BUILD_WORKER', `Cannot build the layer: its thread failed: ${e.message}`), true));
    worker.on('exit', (code) => fail(new FormatError('ERR_BUILD_WORKER', `Cannot build the layer: its thread exited (${code})`), true));
  });
  finished.catch(() => undefined);
  // Source chunks (often 16-64 KiB, and possibly views into buffers their producer reuses) are
  // copied at once into a buffer of BATCH bytes, which moves to the thread when full.
  const newBatch = (): Uint8Array => new Uint8Array(Buffer.allocUnsafeSlow(BATCH).buffer, 0, BATCH);
  let batch = newBatch();
  let batchBytes = 0;
  const flush = (): void => {
    if (batchBytes === 0) return;
    inFlight += batchBytes;
    post({ kind: 'data', bytes: batch.subarray(0, batchBytes) }, [batch.buffer as ArrayBuffer]);
    batch = newBatch();
    batchBytes = 0;
  };
  const add = (chunk: Uint8Array): void => {
    for (let at = 0; at < chunk.length;) {
      const n = Math.min(chunk.length - at, BATCH - batchBytes);
      batch.set(chunk.subarray(at, at + n), batchBytes);
      batchBytes += n;
      at += n;
      if (batchBytes === BATCH) flush();
    }
  };
  try {
    post({ kind: 'start', options });
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (settled) break;
        const n = await it.next();
        if (n.done) {
          flush();
          post({ kind: 'end' });
          break;
        }
        add(n.value);
        while (inFlight > IN_FLIGHT && !settled) await new Promise<void>((r) => { resume = r; });
        resume = undefined;
      }
    } catch (e) {
      sourceError = e;
      flush();
      post({ kind: 'abort', error: toWire(e) });
    } finally {
      if (settled) await it.return?.();
    }
    return await finished;
  } finally {
    await worker.terminate();
  }
}
