/**
 * nydusd's HTTP API on a unix socket (mode 0600), in Nydus's v1 shapes. Requests are parsed
 * into a typed ApiRequest and answered by one handler; errors are
 * `{"code": "...", "message": "..."}` with a 4xx/5xx status, and never disturb the daemon.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { NydusError, UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { isLogLevel, type LogLevel } from '../util/logger.js';

/** A parsed API request. */
export type ApiRequest =
  | { kind: 'daemon-info' }
  | { kind: 'daemon-set-log-level'; level: LogLevel }
  | { kind: 'mount'; mountpoint: string; source: string; fsType: string; config: string; prefetchFiles: string[] }
  | { kind: 'umount'; mountpoint: string }
  | { kind: 'warm'; source: string; config: string; prefetchFiles: string[] }
  | { kind: 'metrics'; what: 'fs' | 'files' | 'pattern' | 'backend' | 'blobcache' | 'inflight' | 'startup'; id: string | undefined; latest: boolean }
  | { kind: 'trace'; id: string | undefined; sinceUnixMs: number; maxFiles: number }
  | { kind: 'daemon-exit' };

/** What the API asks of the daemon. */
export interface DaemonControl {
  handle(req: ApiRequest): Promise<unknown>;
}

/** An API error with an HTTP status. */
export class ApiError extends NydusError {
  readonly status: number;

  constructor(status: number, message: string) {
    super(status === 404 ? 'ERR_NOT_FOUND' : 'ERR_BAD_REQUEST', message);
    this.status = status;
  }
}

/** Largest request body: a mount's config plus a prefetch list of up to 1 MiB of paths. */
const MAX_BODY = 8 << 20;

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new ApiError(413, 'request body larger than 8 MiB');
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

function jsonBody(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `body is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(400, 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/** Turn an HTTP request into an ApiRequest (throws ApiError 4xx). */
export async function parseApiRequest(req: IncomingMessage): Promise<ApiRequest> {
  const url = new URL(req.url ?? '/', 'http://nydusd');
  const method = req.method ?? 'GET';
  const path = url.pathname.replace(/\/+$/, '');
  const q = (k: string): string | undefined => url.searchParams.get(k) ?? undefined;
  const mountpoint = (): string => {
    const m = q('mountpoint');
    if (!m || !m.startsWith('/')) throw new ApiError(400, 'query parameter mountpoint must be an absolute path');
    return m;
  };
  switch (`${method} ${path}`) {
    case 'GET /api/v1/daemon':
      return { kind: 'daemon-info' };
    case 'PUT /api/v1/daemon': {
      const body = jsonBody(await readBody(req));
      const level = body.log_level;
      if (typeof level !== 'string' || !isLogLevel(level.toLowerCase())) throw new ApiError(400, 'log_level must be one of trace, debug, info, warn, error');
      return { kind: 'daemon-set-log-level', level: level.toLowerCase() as LogLevel };
    }
    case 'PUT /api/v1/daemon/exit':
      return { kind: 'daemon-exit' };
    case 'POST /api/v1/mount': {
      const mp = mountpoint();
      const body = jsonBody(await readBody(req));
      const source = body.source;
      if (typeof source !== 'string' || source.length === 0) throw new ApiError(400, 'source (bootstrap path) is required');
      const fsType = typeof body.fs_type === 'string' ? body.fs_type : 'rafs';
      if (fsType !== 'rafs') throw new ApiError(400, `fs_type "${fsType}" is not supported (rafs)`);
      const config = body.config;
      if (typeof config !== 'string') throw new ApiError(400, 'config must be the JSON config as a string');
      const pf = body.prefetch_files ?? [];
      if (!Array.isArray(pf) || !pf.every((x) => typeof x === 'string')) throw new ApiError(400, 'prefetch_files must be a list of paths');
      return { kind: 'mount', mountpoint: mp, source, fsType, config, prefetchFiles: pf as string[] };
    }
    case 'PUT /api/v1/daemon/prefetch': {
      const body = jsonBody(await readBody(req));
      const source = body.source;
      if (typeof source !== 'string' || source.length === 0) throw new ApiError(400, 'source (bootstrap path) is required');
      const config = body.config;
      if (typeof config !== 'string') throw new ApiError(400, 'config must be the JSON config as a string');
      const pf = body.prefetch_files;
      if (!Array.isArray(pf) || pf.length === 0 || !pf.every((x) => typeof x === 'string')) throw new ApiError(400, 'prefetch_files must be a non-empty list of paths');
      return { kind: 'warm', source, config, prefetchFiles: pf as string[] };
    }
    case 'DELETE /api/v1/mount':
      return { kind: 'umount', mountpoint: mountpoint() };
    case 'GET /api/v1/metrics':
      return { kind: 'metrics', what: 'fs', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/files':
      return { kind: 'metrics', what: 'files', id: q('id'), latest: q('latest') === 'true' };
    case 'GET /api/v1/metrics/pattern':
      return { kind: 'metrics', what: 'pattern', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/backend':
      return { kind: 'metrics', what: 'backend', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/blobcache':
      return { kind: 'metrics', what: 'blobcache', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/inflight':
      return { kind: 'metrics', what: 'inflight', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/startup':
      return { kind: 'metrics', what: 'startup', id: q('id'), latest: false };
    case 'GET /api/v1/metrics/trace': {
      const num = (k: string, def: number): number => {
        const v = q(k);
        if (v === undefined) return def;
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 0) throw new ApiError(400, `query parameter ${k} must be a non-negative integer, not ${JSON.stringify(v)}`);
        return n;
      };
      return { kind: 'trace', id: q('id'), sinceUnixMs: num('since_unix_ms', 0), maxFiles: num('max_files', 1_000_000) };
    }
    default:
      throw new ApiError(404, `no such endpoint: ${method} ${url.pathname}`);
  }
}

/** A running API server. */
export interface ApiServer {
  path: string;
  close(): Promise<void>;
}

/** Listen on unix socket `path` (replacing a stale socket file) and serve `control`. */
export async function startApiServer(path: string, control: DaemonControl, logger: Logger): Promise<ApiServer> {
  if (existsSync(path)) rmSync(path, { force: true });
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      let status = 200;
      let body: unknown;
      try {
        const parsed = await parseApiRequest(req);
        body = await control.handle(parsed);
        if (body === undefined) status = 204;
      } catch (e) {
        status = e instanceof ApiError ? e.status : e instanceof UsageError ? 400 : 500;
        body = { code: e instanceof NydusError ? e.code : 'UNDEFINED', message: e instanceof Error ? e.message : String(e) };
        logger.warn('api request failed', { method: req.method, url: req.url, status, error: (body as { message: string }).message });
      }
      if (status === 204) {
        res.writeHead(204).end();
        return;
      }
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    })();
  });
  server.on('clientError', (_err, socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    path,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      rmSync(path, { force: true });
    }),
  };
}
