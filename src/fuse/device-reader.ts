/**
 * Reading the kernel's requests from a /dev/fuse descriptor, one message per read. Two ways:
 *
 *  - `poll` (the default where it works): the descriptor goes into a libuv stream handle (the
 *    one behind pipes), which makes it non-blocking and watches it with epoll; when the kernel has
 *    a request, the main thread reads it itself, into one buffer it owns. No thread hop per
 *    request and no threadpool thread held while the mount is idle.
 *  - `threadpool`: `workers` blocking reads outstanding in libuv's threadpool, each holding one
 *    pool thread while it waits (see session.ts for the sizing rules). Used when the stream
 *    handle cannot be made (Node without `process.binding('pipe_wrap')`, see
 *    {@link pollingAvailable}) or when asked for.
 *
 * Either way every message is handed to `onMessage` as a private copy (the read buffer is reused
 * at once), and `ended` resolves once the connection is gone (ENODEV after unmount, ECONNABORTED
 * after an abort, or end of file).
 * @module
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { NydusError } from '../util/errors.js';

/** How /dev/fuse is read. */
export type DeviceReadMode = 'poll' | 'threadpool';

/** Options of {@link createDeviceReader}. */
export interface DeviceReaderOptions {
  /** An open /dev/fuse descriptor; the reader owns it from now on and closes it. */
  fd: number;
  /** Bytes per read: the kernel refuses reads smaller than max_write plus a header. */
  bufferSize: number;
  /** `threadpool` mode: reads outstanding at once. */
  workers: number;
  /** Default `poll`. */
  mode?: DeviceReadMode;
  /** One request, a copy the callee may keep. */
  onMessage(msg: Buffer): void;
  /** A read failed with an unexpected error (the caller logs it); reading stops, as it does at ENODEV. */
  onReadError(code: string, message: string): void;
}

/** Reads requests from /dev/fuse until the connection ends. */
export interface DeviceReader {
  readonly mode: DeviceReadMode;
  /** Resolves (never rejects) when no more requests will come. */
  readonly ended: Promise<void>;
  /** Close the descriptor (once reading has ended; idempotent). */
  close(): Promise<void>;
}

/** Read errors that only mean "try again". */
const RETRY_CODES = new Set(['EINTR', 'EAGAIN', 'ENOENT']);
/** Read errors that mean the connection is gone (unmounted or aborted). */
const END_CODES = new Set(['ENODEV', 'ECONNABORTED']);

interface PipeBinding {
  Pipe: new (type: number) => { open(fd: number): number; close(cb?: () => void): void };
  constants: { SOCKET: number };
}

/** The libuv pipe handle constructor, if this Node exposes it. */
function pipeBinding(): PipeBinding | undefined {
  try {
    const b = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as Partial<PipeBinding>;
    return typeof b.Pipe === 'function' && typeof b.constants?.SOCKET === 'number' ? b as PipeBinding : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this Node can read /dev/fuse in `poll` mode. */
export function pollingAvailable(): boolean {
  return pipeBinding() !== undefined;
}

/** Start reading `o.fd` in `o.mode` (default `poll`); throws when `poll` cannot be set up. */
export function createDeviceReader(o: DeviceReaderOptions): DeviceReader {
  return (o.mode ?? 'poll') === 'poll' ? pollReader(o) : threadpoolReader(o);
}

function pollReader(o: DeviceReaderOptions): DeviceReader {
  const b = pipeBinding();
  if (!b) throw new NydusError('ERR_FUSE_POLL', 'Cannot watch /dev/fuse: this Node has no pipe_wrap binding (use the threadpool read mode)');
  const handle = new b.Pipe(b.constants.SOCKET);
  const rc = handle.open(o.fd);
  if (rc !== 0) {
    handle.close();
    throw new NydusError('ERR_FUSE_POLL', `Cannot watch /dev/fuse (descriptor ${o.fd}): libuv error ${rc}`);
  }
  let end!: () => void;
  const ended = new Promise<void>((resolve) => { end = resolve; });
  const socket = new net.Socket({
    handle,
    readable: true,
    writable: false,
    allowHalfOpen: true,
    onread: {
      buffer: Buffer.allocUnsafe(o.bufferSize),
      callback: (n: number, buf: Uint8Array): boolean => {
        const msg = Buffer.allocUnsafe(n);
        msg.set(buf.subarray(0, n));
        o.onMessage(msg);
        return true;
      },
    },
  } as unknown as net.SocketConstructorOpts);
  socket.on('error', (e: NodeJS.ErrnoException) => {
    const code = e.code ?? '';
    if (!END_CODES.has(code)) o.onReadError(code, e.message);
  });
  socket.on('close', () => end());
  socket.on('end', () => socket.destroy());
  return {
    mode: 'poll',
    ended,
    async close(): Promise<void> {
      socket.destroy();
      await ended;
    },
  };
}

/**
 * One read of /dev/fuse in the threadpool. The callback form, not FileHandle.read: every request
 * pays this hop, and the promise API's bookkeeping costs microseconds a metadata walk notices.
 */
function readDevice(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function threadpoolReader(o: DeviceReaderOptions): DeviceReader {
  let running = o.workers;
  let end!: () => void;
  const ended = new Promise<void>((resolve) => { end = resolve; });
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(o.bufferSize);
    try {
      for (;;) {
        let n: number;
        try {
          n = await readDevice(o.fd, buf);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? '';
          if (RETRY_CODES.has(code)) continue;
          if (!END_CODES.has(code)) o.onReadError(code, (e as Error).message);
          return;
        }
        if (n === 0) return;
        const msg = Buffer.allocUnsafe(n);
        buf.copy(msg, 0, 0, n);
        o.onMessage(msg);
      }
    } finally {
      if (--running === 0) end();
    }
  };
  for (let i = 0; i < o.workers; i++) void worker();
  let closing: Promise<void> | undefined;
  return {
    mode: 'threadpool',
    ended,
    close(): Promise<void> {
      closing ??= ended.then(() => new Promise<void>((resolve) => fs.close(o.fd, () => resolve())));
      return closing;
    },
  };
}
