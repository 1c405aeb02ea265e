/**
 * `nydus-backend-proxy`: serve a directory of blobs over HTTP with Range support, for nydusd's
 * `http-proxy` backend (and ours, `http`).
 * @module
 */
import { parseArgs } from 'node:util';
import { statSync } from 'node:fs';
import { NydusError, UsageError } from '../../util/errors.js';
import { isLogLevel } from '../../util/logger.js';
import { createStreamLogger } from '../../daemon/stream-logger.js';
import { startBackendProxy, type BackendProxyOptions } from './server.js';

const TOOL = 'nydus-backend-proxy';

const HELP = `${TOOL} - serve a directory of Nydus blobs over HTTP (Range, HEAD) for the http-proxy backend

Usage: ${TOOL} --blobs-dir <dir> [--addr <host:port | /unix.sock> | --port <port>]

Options:
      --blobs-dir <dir>        Directory whose files (blob ids) are served [required]
      --addr <addr>            host:port, [v6]:port, or an absolute unix socket path [default: 127.0.0.1:8080]
      --port <port>            Port on 127.0.0.1 (0 picks a free one); instead of --addr
      --path-prefix <path>     URL prefix the blobs are served under [default: /]
  -l, --log-level <level>      trace|debug|info|warn|error; debug logs every request [default: info]
  -V, --version                Print the version
  -h, --help                   Print help

Blobs are served at http://<addr><path-prefix>/<blob id>. SIGTERM or SIGINT stops the server.`;

/** Parse --addr. */
function parseAddr(s: string): Pick<BackendProxyOptions, 'host' | 'port' | 'socketPath'> {
  if (s.startsWith('/')) return { socketPath: s };
  const v = s.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError('ERR_USAGE', `Cannot parse --addr "${s}": expected host:port, [v6]:port or an absolute unix socket path`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

function parsePort(s: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw new UsageError('ERR_USAGE', `Cannot parse --port "${s}": expected 0..65535`);
  return Number(s);
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        'blobs-dir': { type: 'string' }, addr: { type: 'string' }, port: { type: 'string' }, 'path-prefix': { type: 'string' },
        'log-level': { type: 'string', short: 'l', default: 'info' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
      },
    }));
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0] ?? ''} (see '${TOOL} --help')`);
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${TOOL} 0.1.0 (nydus-ts)\n`);
    return 0;
  }
  const dir = values['blobs-dir'];
  if (dir === undefined || dir === '') throw new UsageError('ERR_USAGE', `--blobs-dir is required (see '${TOOL} --help')`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError('ERR_USAGE', `Cannot serve --blobs-dir ${dir}: not a directory`);
  if (values.addr !== undefined && values.port !== undefined) throw new UsageError('ERR_USAGE', '--addr and --port exclude each other');
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError('ERR_USAGE', `Cannot use --log-level "${level}": expected trace, debug, info, warn or error`);
  const where = values.port !== undefined ? { host: '127.0.0.1', port: parsePort(values.port) } : parseAddr(values.addr ?? '127.0.0.1:8080');
  const logger = createStreamLogger(level);
  const prefix = values['path-prefix'];
  const proxy = await startBackendProxy({ blobsDir: dir, logger, ...where, ...(prefix !== undefined ? { pathPrefix: prefix } : {}) });
  process.stdout.write(`${TOOL} listening on ${proxy.url} (blobs: ${dir})\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      logger.info(`${sig}: shutting down`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      // Whatever happens, do not outlive a stuck close by long.
      setTimeout(() => process.exit(1), 5000).unref();
      void proxy.close().then(resolve);
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof NydusError ? ` [${e.code}]` : '';
  process.stderr.write(`${TOOL}: error: ${msg}${code}\n`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
