/**
 * Worker thread of a layer build: runs `create` (tar-rafs) over the bytes its feeder posts, and
 * says how many it has taken so that the feeder keeps only a bounded amount in flight.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { create } from './create.js';
import { fromWire, toWire, type FromWorker, type ToWorker } from './layer-build-protocol.js';

const port = parentPort;
if (!port) throw new Error('layer-build-worker.ts runs only as a worker thread');

const queue: Uint8Array[] = [];
/** Taken bytes not yet reported (reported per MiB, and whenever the queue runs dry). */
let untold = 0;
let ended = false;
/** The feeder's source failed with this: the build fails with it (plus where in the tar it was). */
let aborted: Error | undefined;
let wake: (() => void) | undefined;

const send = (m: FromWorker): void => port.postMessage(m);

/** The posted bytes, in order, as create's source. */
async function* source(): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = queue.shift();
    if (next) {
      untold += next.length;
      if (untold >= 1 << 20 || queue.length === 0) {
        send({ kind: 'taken', bytes: untold });
        untold = 0;
      }
      yield next;
      continue;
    }
    // The source's failure comes where its bytes stop, after all it delivered.
    if (aborted !== undefined) throw aborted;
    if (ended) return;
    await new Promise<void>((r) => { wake = r; });
    wake = undefined;
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'start':
      create({ ...m.options, type: 'tar-rafs', source: source(), onWarn: (code, message) => send({ kind: 'warn', code, message }) }).then(
        (result) => send({ kind: 'done', result }),
        (e: unknown) => send({ kind: 'error', error: toWire(e) }),
      );
      return;
    case 'data':
      queue.push(m.bytes);
      break;
    case 'end':
      ended = true;
      break;
    case 'abort':
      aborted = fromWire(m.error);
      break;
  }
  wake?.();
});
