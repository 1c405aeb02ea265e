/**
 * Positioned I/O on numeric file descriptors, and group commit of fdatasync.
 * @module
 */
import { fdatasync, read, write } from 'node:fs';
import { promisify } from 'node:util';

const readP = promisify(read);
const writeP = promisify(write);
const fdatasyncP = promisify(fdatasync);

/** Write all of `data` at `position`. */
export async function pwriteAll(fd: number, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await writeP(fd, data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`wrote nothing at ${position + done}`);
    done += bytesWritten;
  }
}

/** Read exactly `length` bytes at `position`; throws when the file ends first. */
export async function preadExact(fd: number, length: number, position: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await readP(fd, out, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`the file ends at ${position + done}, before ${position + length}`);
    done += bytesRead;
  }
  return out;
}

/** fdatasync, as a promise. */
export function fdatasyncAsync(fd: number): Promise<void> {
  return fdatasyncP(fd);
}

/**
 * fdatasync with group commit: callers that arrive while a sync runs share the next one, so N
 * concurrent writers cost at most two syncs, and every caller's earlier writes are covered.
 */
export class SyncCoalescer {
  readonly #fd: number;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  sync(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#running) {
      const p = fdatasyncAsync(this.#fd).finally(() => {
        if (this.#running === p) this.#running = undefined;
      });
      this.#running = p;
      return p;
    }
    // A sync is running but may have started before our writes: queue one more after it.
    const next = this.#running.catch(() => undefined).then(() => {
      this.#next = undefined;
      return this.sync();
    });
    this.#next = next;
    return next;
  }
}
