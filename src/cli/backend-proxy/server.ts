/**
 * The blob server behind `nydus-backend-proxy`: serves the files of one directory over HTTP with
 * single-range support, for the `http` / `http-proxy` backend.
 *
 * - `GET|HEAD <prefix>/<name>`; `name` must be a plain file name (letters, digits, `.`, `_`, `-`,
 *   not starting with `.`), else 400; a file that does not exist, is not a regular file, or
 *   resolves (through symlinks) outside the directory is 404.
 * - No Range, a malformed Range, or several ranges: 200 with the whole file (RFC 9110 lets a
 *   server ignore Range). One satisfiable range: 206 with Content-Range. Unsatisfiable: 416 with
 *   `Content-Range: bytes *\/size`.
 * - Other methods: 405.
 * @module
 */
import * as http from 'node:http';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import { nullLogger, type Logger } from '../../util/logger.js';
import { isPlainBlobId } from '../../storage/blob-id.js';

/** Options of {@link startBackendProxy}. */
export interface BackendProxyOptions {
  /** Directory whose files are served. */
  blobsDir: string;
  /** Host to listen on (default 127.0.0.1). */
  host?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** Listen on this unix socket instead of TCP. */
  socketPath?: string;
  /** URL prefix of the blobs (default "/"): files are at `<prefix>/<name>`. */
  pathPrefix?: string;
  /** One line per request at debug level. */
  logger?: Logger;
}

/** A running server. */
export interface BackendProxy {
  /** Host (TCP) or socket path. */
  address: string;
  /** TCP port, 0 on a unix socket. */
  port: number;
  /** What to put in the backend's `addr`: `http://host:port` or the socket path. */
  url: string;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

/** The outcome of a Range header against a file of `size` bytes. */
export type RangeRequest = { kind: 'whole' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/** Interpret a Range header (RFC 9110 §14.2), single byte ranges only. */
export function parseRangeHeader(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'whole' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  const a = m[1] === '' ? undefined : Number(m[1]);
  const b = m[2] === '' ? undefined : Number(m[2]);
  if (a === undefined) {
    // Suffix range: the last b bytes.
    if (b === undefined || b === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - b), end: size - 1 };
  }
  if (b !== undefined && b < a) return { kind: 'whole' };
  if (a >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start: a, end: b === undefined ? size - 1 : Math.min(b, size - 1) };
}

function normalisePrefix(p: string | undefined): string {
  return `/${p ?? ''}`.replace(/\/+/g, '/').replace(/\/$/, '');
}

/** Start serving `blobsDir`. */
export async function startBackendProxy(options: BackendProxyOptions): Promise<BackendProxy> {
  const logger = options.logger ?? nullLogger;
  const root = await realpath(options.blobsDir);
  const prefix = normalisePrefix(options.pathPrefix);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? '';
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 }).end();
      return;
    }
    const rawPath = (req.url ?? '/').split('?')[0] as string;
    if (!rawPath.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    let name: string;
    try {
      name = decodeURIComponent(rawPath.slice(prefix.length + 1));
    } catch {
      name = '';
    }
    if (!isPlainBlobId(name)) {
      res.writeHead(400, { 'content-length': 0 }).end();
      return;
    }
    const path = join(root, name);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      res.writeHead(code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' ? 404 : 500, { 'content-length': 0 }).end();
      return;
    }
    let handedOver = false;
    try {
      const real = await realpath(path);
      const st = await fh.stat();
      if (!real.startsWith(root + sep) || !st.isFile()) {
        res.writeHead(404, { 'content-length': 0 }).end();
        return;
      }
      const size = st.size;
      const r = parseRangeHeader(req.headers.range, size);
      const common = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
      if (r.kind === 'unsatisfiable') {
        res.writeHead(416, { ...common, 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
        return;
      }
      const start = r.kind === 'range' ? r.start : 0;
      const end = r.kind === 'range' ? r.end : size - 1;
      const length = end - start + 1;
      if (r.kind === 'range') res.writeHead(206, { ...common, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': length });
      else res.writeHead(200, { ...common, 'content-length': size });
      if (method === 'HEAD' || length <= 0) {
        res.end();
        return;
      }
      handedOver = true;
      await pipeline(fh.createReadStream({ start, end, autoClose: true }), res);
    } finally {
      if (!handedOver) await fh.close().catch(() => undefined);
    }
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    res.on('close', () => {
      logger.debug(`${req.method ?? '?'} ${req.url ?? '?'} ${res.statusCode}`, {
        range: req.headers.range, bytes: res.getHeader('content-length'), ms: Math.round((performance.now() - t0) * 10) / 10, complete: res.writableFinished,
      });
    });
    handle(req, res).catch((e: unknown) => {
      logger.debug('request failed', { url: req.url, error: (e as Error).message });
      if (!res.headersSent) res.writeHead(500, { 'content-length': 0 }).end();
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (options.socketPath !== undefined) server.listen(options.socketPath, onListening);
    else server.listen(options.port ?? 0, options.host ?? '127.0.0.1', onListening);
  });
  server.on('error', (e) => logger.error('server error', { error: e.message }));

  let address: string;
  let port = 0;
  let url: string;
  if (options.socketPath !== undefined) {
    address = options.socketPath;
    url = options.socketPath;
  } else {
    const a = server.address() as AddressInfo;
    address = a.address;
    port = a.port;
    url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }
  let closing: Promise<void> | undefined;
  return {
    address, port, url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
