/**
 * `nydusctl`: the client of nydusd's API. Tables by default, `--raw` for JSON.
 * @module
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NydusError, UsageError } from '../../util/errors.js';
import { apiCall } from '../../api/api-client.js';

const HELP = `nydusctl - talk to a running nydusd

Usage: nydusctl --sock <apisock> [--raw] <command>

Commands:
  info                                   Daemon id, version, state and mounts
  metrics [fs|backend|blobcache|files|pattern|inflight|startup] [--id MOUNTPOINT]
                                         startup: first-read latency histogram, backend
                                         requests and bytes, fetched vs read, prefetch hits
  trace --mountpoint DIR [--since UNIX_MS]
                                         Files read since the mount (or since UNIX_MS), in
                                         first-access order, one path a line: a prefetch list
                                         (--raw: JSON with times, bytes and byte ranges)
  set log-level <trace|debug|info|warn|error>
  mount --source BOOTSTRAP --config FILE --mountpoint DIR [--type rafs] [--prefetch-files a,b]
  umount --mountpoint DIR

Options:
  -S, --sock <path>   nydusd's API socket (required)
  -r, --raw           Print the JSON the daemon returned
  -h, --help          Print help`;

function table(rows: Array<[string, unknown]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('\n');
}

function list(items: Array<Record<string, unknown>>): string {
  if (items.length === 0) return '(none)';
  const cols = Object.keys(items[0] as object);
  const widths = cols.map((c) => Math.max(c.length, ...items.map((i) => String(i[c]).length)));
  const line = (vals: string[]): string => vals.map((v, k) => v.padEnd(widths[k] as number)).join('  ').trimEnd();
  return [line(cols), ...items.map((i) => line(cols.map((c) => String(i[c]))))].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true, options: {
        sock: { type: 'string', short: 'S' }, raw: { type: 'boolean', short: 'r' }, help: { type: 'boolean', short: 'h' },
        id: { type: 'string' }, source: { type: 'string' }, config: { type: 'string' }, mountpoint: { type: 'string' },
        type: { type: 'string', default: 'rafs' }, 'prefetch-files': { type: 'string' }, interval: { type: 'string' },
        since: { type: 'string' },
      },
    });
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0]} (see 'nydusctl --help')`);
  }
  const { values: v, positionals: pos } = parsed;
  if (v.help || pos.length === 0) { process.stdout.write(`${HELP}\n`); return pos.length === 0 && !v.help ? 2 : 0; }
  const sock = v.sock;
  if (!sock) throw new UsageError('ERR_USAGE', '--sock is required');
  const out = (body: unknown, pretty: () => string): void => {
    process.stdout.write(`${v.raw ? JSON.stringify(body, null, 2) : pretty()}\n`);
  };
  const [cmd, ...rest] = pos;
  const idq = v.id ? `?id=${encodeURIComponent(v.id)}` : '';
  switch (cmd) {
    case 'info': {
      const b = await apiCall(sock, 'GET', '/api/v1/daemon') as Record<string, unknown>;
      const mounts = Object.values((b.backend_collection ?? {}) as Record<string, Record<string, unknown>>);
      out(b, () => `${table([['id', b.id], ['version', (b.version as { package_ver: string }).package_ver], ['state', b.state], ['mounts', mounts.length]])}${mounts.length ? `\n\n${list(mounts.map((m) => ({ mountpoint: m.mountpoint, backend: m.backend_type, source: m.source })))}` : ''}`);
      return 0;
    }
    case 'metrics': {
      const what = rest[0] ?? 'fs';
      const path = { fs: '/api/v1/metrics', cache: '/api/v1/metrics/blobcache', fsstats: '/api/v1/metrics', backend: '/api/v1/metrics/backend', blobcache: '/api/v1/metrics/blobcache', files: '/api/v1/metrics/files', pattern: '/api/v1/metrics/pattern', inflight: '/api/v1/metrics/inflight', startup: '/api/v1/metrics/startup' }[what];
      if (!path) throw new UsageError('ERR_USAGE', `unknown metrics "${what}" (fs, backend, blobcache, files, pattern, inflight, startup)`);
      const b = await apiCall(sock, 'GET', `${path}${idq}`);
      out(b, () => Array.isArray(b) ? list(b as Array<Record<string, unknown>>) : table(Object.entries(b as Record<string, unknown>)));
      return 0;
    }
    case 'trace': {
      const mp = v.mountpoint ?? v.id;
      if (!mp) throw new UsageError('ERR_USAGE', 'usage: nydusctl trace --mountpoint DIR [--since UNIX_MS]');
      if (v.since !== undefined && !/^\d+$/.test(v.since)) throw new UsageError('ERR_USAGE', `--since must be milliseconds since the epoch, not "${v.since}"`);
      const q = `?id=${encodeURIComponent(resolve(mp))}${v.since !== undefined ? `&since_unix_ms=${v.since}` : ''}`;
      const b = await apiCall(sock, 'GET', `/api/v1/metrics/trace${q}`) as Array<{ path: string }>;
      out(b, () => b.map((e) => e.path).join('\n'));
      return 0;
    }
    case 'set': {
      if (rest[0] !== 'log-level' || !rest[1]) throw new UsageError('ERR_USAGE', 'usage: nydusctl set log-level <level>');
      await apiCall(sock, 'PUT', '/api/v1/daemon', { log_level: rest[1] });
      process.stdout.write(`log level set to ${rest[1]}\n`);
      return 0;
    }
    case 'mount': {
      if (!v.source || !v.config || !v.mountpoint) throw new UsageError('ERR_USAGE', 'mount needs --source, --config and --mountpoint');
      let config: string;
      try { config = readFileSync(v.config, 'utf8'); } catch (e) { throw new UsageError('ERR_USAGE', `Cannot read config ${v.config}: ${(e as Error).message}`); }
      const body = { source: resolve(v.source), fs_type: v.type, config, prefetch_files: v['prefetch-files'] ? v['prefetch-files'].split(',') : [] };
      await apiCall(sock, 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(resolve(v.mountpoint))}`, body);
      process.stdout.write(`mounted ${v.source} at ${v.mountpoint}\n`);
      return 0;
    }
    case 'umount': {
      if (!v.mountpoint) throw new UsageError('ERR_USAGE', 'umount needs --mountpoint');
      await apiCall(sock, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(resolve(v.mountpoint))}`);
      process.stdout.write(`unmounted ${v.mountpoint}\n`);
      return 0;
    }
    default:
      throw new UsageError('ERR_USAGE', `unknown command "${cmd}" (see 'nydusctl --help')`);
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`nydusctl: error: ${e instanceof Error ? e.message : String(e)}${e instanceof NydusError ? ` [${e.code}]` : ''}\n`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
});
