/**
 * `nydusd`: the FUSE daemon. Flags follow Nydus's nydusd.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NydusError, UsageError } from '../../util/errors.js';
import { isLogLevel } from '../../util/logger.js';
import { createStreamLogger } from '../../daemon/stream-logger.js';
import { parseDaemonConfig } from '../../daemon/config.js';
import { Daemon } from '../../daemon/daemon.js';
import { startApiServer, type ApiServer } from '../../api/api-server.js';
import { createDaemonControl } from '../../api/daemon-control.js';

const HELP = `nydusd - serve Nydus RAFS v6 images over FUSE, fetching chunks on demand

Usage: nydusd [fuse] [options]

Options:
  -C, --config <file>        nydusd JSON config (device.backend, device.cache, fs_prefetch, ...)
  -B, --bootstrap <file>     Bootstrap to mount at start (or a blob with an inline bootstrap)
  -M, --mountpoint <dir>     Where to mount it
  -D, --localfs-dir <dir>    Shortcut for a localfs backend over <dir> (instead of --config)
  -A, --apisock <path>       Unix socket of the HTTP API (mode 0600)
  -l, --log-level <level>    trace, debug, info, warn, error [default: info]
      --id <id>              Daemon id reported by the API
      --thread-num <n>       Outstanding FUSE reads per mount where /dev/fuse cannot be polled (alias --fuse-threads) [default: 4]
      --prefetch-files <f>   File with paths to prefetch, one a line
      --supervisor <path>    Accepted for compatibility (ignored)
  -h, --help                 Print help
  -V, --version              Print the version

Without --bootstrap the daemon starts and waits for mounts through the API.`;

async function main(argv: string[]): Promise<number> {
  const args = argv[0] === 'fuse' ? argv.slice(1) : argv;
  let values;
  try {
    ({ values } = parseArgs({
      args, allowPositionals: false, strict: true, options: {
        config: { type: 'string', short: 'C' }, bootstrap: { type: 'string', short: 'B' }, mountpoint: { type: 'string', short: 'M' },
        'localfs-dir': { type: 'string', short: 'D' }, apisock: { type: 'string', short: 'A' }, 'log-level': { type: 'string', short: 'l', default: 'info' },
        id: { type: 'string' }, 'thread-num': { type: 'string' }, 'fuse-threads': { type: 'string' }, 'prefetch-files': { type: 'string' },
        supervisor: { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' }, 'virtual-mountpoint': { type: 'string', short: 'm' },
      },
    }));
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0]} (see 'nydusd --help')`);
  }
  if (values.help) { process.stdout.write(`${HELP}\n`); return 0; }
  if (values.version) { process.stdout.write('nydusd 0.1.0 (nydus-ts)\n'); return 0; }
  const level = (values['log-level'] as string).toLowerCase();
  if (!isLogLevel(level)) throw new UsageError('ERR_USAGE', `--log-level "${level}" is not one of trace, debug, info, warn, error`);
  if (values.config && values['localfs-dir']) throw new UsageError('ERR_USAGE', '--config and --localfs-dir cannot be used together');
  if (values.bootstrap && !values.mountpoint) throw new UsageError('ERR_USAGE', '--bootstrap needs --mountpoint');
  if (!values.bootstrap && !values.apisock) throw new UsageError('ERR_USAGE', 'give --bootstrap and --mountpoint, or --apisock to mount through the API');
  let configText: string;
  if (values.config) {
    try {
      configText = readFileSync(values.config, 'utf8');
    } catch (e) {
      throw new UsageError('ERR_BAD_CONFIG', `Cannot read config ${values.config}: ${(e as Error).message}`);
    }
  } else {
    configText = JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: values['localfs-dir'] ?? '.' } }, cache: { type: '' } } });
  }
  const config = parseDaemonConfig(configText, values.config ?? 'the config');
  const prefetchFiles = values['prefetch-files'] ? readFileSync(values['prefetch-files'], 'utf8').split('\n').map((s) => s.trim()).filter(Boolean) : [];
  const logger = createStreamLogger(level);
  const workers = Number(values['thread-num'] ?? values['fuse-threads'] ?? 4);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('ERR_USAGE', '--thread-num must be 1..64');
  const daemon = new Daemon({ id: values.id ?? `nydusd-${process.pid}`, logger, fuseWorkers: workers });
  let api: ApiServer | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping', { reason: why });
      await daemon.stop();
      await api?.close();
    })();
    return stopping;
  };
  const exitAfter = (why: string): void => { void stop(why).then(() => process.exit(0), () => process.exit(1)); };
  process.on('SIGTERM', () => exitAfter('SIGTERM'));
  process.on('SIGINT', () => exitAfter('SIGINT'));
  try {
    if (values.apisock) {
      api = await startApiServer(values.apisock, createDaemonControl({ daemon, logger, onExit: () => exitAfter('API exit') }), logger);
      logger.info('api listening', { apisock: values.apisock });
    }
    if (values.bootstrap) {
      await daemon.mount({ mountpoint: values.mountpoint as string, source: values.bootstrap, config, configText, prefetchFiles });
    }
  } catch (e) {
    await stop('start-up failed');
    throw e;
  }
  daemon.state = 'RUNNING';
  logger.info('nydusd running', { id: daemon.id, pid: process.pid });
  // Stay up until a signal or the API stops us; a mount unmounted from outside ends a
  // single-image daemon without an API, like nydusd.
  if (!values.apisock) {
    const m = daemon.mounts.get(values.mountpoint as string);
    await m?.session.closed;
    await stop('mount went away');
    return 0;
  }
  await new Promise<void>(() => undefined);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`nydusd: error: ${msg}${e instanceof NydusError ? ` [${e.code}]` : ''}\n`);
  if (process.env.NYDUS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
