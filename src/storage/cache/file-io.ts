/**
 * Positioned I/O on numeric file descriptors, and group commit of fdatasync.
 * @module
 */
import { fdatasync, read, write, writev } from 'node:fs';
import { promisify } from 'node:util';

const readP = promisify(read);
const writeP = promisify(write);
const writevP = promisify(writev);
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

/** Write `parts` back to back from `position`, in one pwritev when the kernel takes it all. */
export async function pwritevAll(fd: number, parts: readonly Uint8Array[], position: number): Promise<void> {
  let rest = [...parts];
  let pos = position;
  while (rest.length > 0) {
    const { bytesWritten } = await writevP(fd, rest, pos);
    if (bytesWritten <= 0) throw new Error(`wrote nothing at ${pos}`);
    pos += bytesWritten;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Uint8Array).length) skip -= (rest.shift() as Uint8Array).length;
    if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Uint8Array).subarray(skip);
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
 * With `delayMs`, a sync starts that long after the first caller asks, so that a burst of writes
 * (a container start fetching hundreds of chunks) shares one sync instead of competing with its
 * own reads for the disk; {@link flush} starts the waiting one at once.
 */
export class SyncCoalescer {
  readonly #fd: number;
  readonly #delayMs: number;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #timer: { handle: NodeJS.Timeout; fire: () => void } | undefined;

  constructor(fd: number, delayMs = 0) {
    this.#fd = fd;
    this.#delayMs = delayMs;
  }

  sync(): Promise<void> {
    if (this.#next) return this.#next;
    if (this.#delayMs > 0 && !this.#running) {
      const waiting = new Promise<void>((resolve) => {
        const fire = (): void => {
          clearTimeout(handle);
          this.#timer = undefined;
          resolve();
        };
        const handle = setTimeout(fire, this.#delayMs);
        this.#timer = { handle, fire };
      }).then(() => {
        this.#next = undefined;
        return this.#start();
      });
      this.#next = waiting;
      return waiting;
    }
    if (!this.#running) return this.#start();
    // A sync is running but may have started before our writes: queue one more after it.
    const next = this.#running.catch(() => undefined).then(() => {
      this.#next = undefined;
      return this.sync();
    });
    this.#next = next;
    return next;
  }

  /** Start a delayed sync now (before closing the file). */
  flush(): void {
    this.#timer?.fire();
  }

  #start(): Promise<void> {
    const p = fdatasyncAsync(this.#fd).finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }
}
