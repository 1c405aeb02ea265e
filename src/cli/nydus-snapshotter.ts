/**
 * `nydus-snapshotter`: a containerd proxy snapshotter (gRPC on a unix socket) that runs Nydus
 * images lazily through one shared nydusd, and plain OCI images as overlayfs snapshots. Flags
 * follow nydus-snapshotter's `containerd-nydus-grpc` where it has them.
 * @module
 */
import { readFileSync, realpathSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NydusError, UsageError } from '../util/errors.js';
import { isLogLevel, type LogLevel } from '../util/logger.js';
import { readSnapshotterConfig, type SnapshotterConfigFile } from '../snapshotter/config-file.js';
import { createStreamLogger } from '../daemon/stream-logger.js';
import { defaultDockerConfigPath } from '../registry/credentials.js';
import { defaultNydusdPath } from '../nydusify/nydusd-runner.js';
import { ImageResolver } from '../snapshotter/image-resolver.js';
import { DaemonManager } from '../snapshotter/daemon-manager.js';
import { NydusSnapshotter } from '../snapshotter/snapshotter.js';
import { serveSnapshotter, type SnapshotterServer } from '../snapshotter/grpc-server.js';
import { DEFAULT_NYDUSD_TEMPLATE, parseNydusdTemplate } from '../snapshotter/nydusd-config.js';
import { TraceRecorder, readTraces } from '../snapshotter/trace-recorder.js';

const HELP = `nydus-snapshotter - a containerd snapshotter that starts Nydus images lazily

Usage: nydus-snapshotter [options]
       nydus-snapshotter trace [--root DIR] [--raw] [--all] IMAGE_REF
                              Print the newest start-up trace of a container of IMAGE_REF
                              (as it was pulled) as a prefetch list, one path a line; --raw:
                              the trace as JSON (times, bytes, byte ranges), --all: every kept one

Options:
      --address <sock>        Unix socket to serve the snapshots API on
                              [default: /run/containerd-nydus/containerd-nydus-grpc.sock]
      --root <dir>            Snapshots, metadata.db, image mounts, blob cache, nydusd files
                              [default: /var/lib/containerd-nydus]
      --config <file>         nydus-snapshotter's config.toml (root, address, [daemon]
                              nydusd_config / nydusd_path / fs_driver, [log] level, [remote]
                              skip_ssl_verify; other settings are logged and left out), or a
                              JSON object of: address, root, log_level, nydusd_config,
                              nydusd_path, daemon_mode, fs_driver, plain_http, insecure (flags win)
      --nydusd-config <file>  nydusd JSON config template; the registry backend's scheme, host,
                              repo and auth are filled in per image, the cache dir is <root>/cache
      --nydusd-path <path>    nydusd to run (alias --nydusd) [default: bin/nydusd of this checkout]
      --daemon-mode <mode>    How images share nydusd: only "shared" (one nydusd) [default: shared]
      --log-level <level>     trace, debug, info, warn, error [default: info]
      --plain-http            Talk to registries over plain HTTP
      --insecure              Do not verify registries' TLS certificates
  -h, --help                  Print help
  -V, --version               Print the version

containerd config (config.toml, version 2):
  [proxy_plugins.nydus]
    type = "snapshot"
    address = "<the --address socket>"

Pull with labels so Nydus layers are not downloaded, then run:
  ctr-remote image rpull --snapshotter nydus [--plain-http] REF
  ctr run --snapshotter nydus REF ID [CMD...]`;

/** Settings after flags and config file. */
interface Settings {
  address: string;
  root: string;
  nydusdConfig: string | undefined;
  nydusdPath: string;
  daemonMode: string;
  logLevel: LogLevel;
  plainHttp: boolean;
  insecure: boolean;
  /** fs_driver for the nydusd template, from the config file. */
  fsDriver: 'fusedev' | 'erofs' | undefined;
  /** What the config file mapped or left out, to log. */
  configNotes: string[];
}

function settingsOf(argv: string[]): Settings | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, allowPositionals: false, strict: true, options: {
        address: { type: 'string' }, root: { type: 'string' }, config: { type: 'string' }, 'nydusd-config': { type: 'string' },
        'nydusd-path': { type: 'string' }, nydusd: { type: 'string' }, 'daemon-mode': { type: 'string' }, 'log-level': { type: 'string' },
        'plain-http': { type: 'boolean' }, insecure: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
      },
    }));
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0]} (see 'nydus-snapshotter --help')`);
  }
  if (values.help) { process.stdout.write(`${HELP}\n`); return undefined; }
  if (values.version) { process.stdout.write('nydus-snapshotter 0.1.0 (nydus-ts)\n'); return undefined; }
  const file: SnapshotterConfigFile = values.config !== undefined ? readSnapshotterConfig(values.config) : { notes: [] };
  const level = (values['log-level'] ?? file.logLevel ?? 'info').toLowerCase();
  if (!isLogLevel(level)) throw new UsageError('ERR_USAGE', `--log-level "${level}" is not one of trace, debug, info, warn, error`);
  // config.toml's daemon_mode ("dedicated" in nydus-snapshotter's sample) is only noted (see config-file.ts).
  const daemonMode = values['daemon-mode'] ?? file.daemonMode ?? 'shared';
  if (daemonMode !== 'shared') throw new UsageError('ERR_USAGE', `--daemon-mode "${daemonMode}" is not supported: every image is mounted by one shared nydusd ("shared")`);
  const nydusdConfig = values['nydusd-config'] ?? file.nydusdConfig;
  // The file's fs_driver belongs to the file's setup: a template given by flag is used as it is.
  const fsDriver = values['nydusd-config'] === undefined ? file.fsDriver : undefined;
  return {
    address: resolve(values.address ?? file.address ?? '/run/containerd-nydus/containerd-nydus-grpc.sock'),
    root: resolve(values.root ?? file.root ?? '/var/lib/containerd-nydus'),
    nydusdConfig: nydusdConfig !== undefined ? resolve(nydusdConfig) : undefined,
    nydusdPath: values['nydusd-path'] ?? values.nydusd ?? file.nydusdPath ?? defaultNydusdPath(),
    daemonMode, logLevel: level,
    plainHttp: values['plain-http'] === true || file.plainHttp === true, insecure: values.insecure === true || file.insecure === true,
    fsDriver, configNotes: file.notes,
  };
}

/** Process architecture in OCI terms. */
function ociArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

const TRACE_HELP = `nydus-snapshotter trace - print a container's start-up trace of an image

Usage: nydus-snapshotter trace [--root DIR] [--raw] [--all] IMAGE_REF

The newest trace the snapshotter kept for IMAGE_REF (written as it was pulled), as a prefetch
list: the files read, one absolute path a line, in first-access order.

Options:
      --root <dir>   The snapshotter's root [default: /var/lib/containerd-nydus]
      --raw          The trace as JSON (times, bytes, byte ranges)
      --all          Every kept trace (paths merged, newest first)
  -h, --help         Print help`;

/** `nydus-snapshotter trace`: print a kept start-up trace. */
function traceCommand(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { root: { type: 'string' }, raw: { type: 'boolean' }, all: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0]} (see 'nydus-snapshotter --help')`);
  }
  if (parsed.values.help) {
    process.stdout.write(`${TRACE_HELP}\n`);
    return 0;
  }
  const image = parsed.positionals[0];
  if (image === undefined || parsed.positionals.length > 1) throw new UsageError('ERR_USAGE', 'usage: nydus-snapshotter trace [--root DIR] [--raw] [--all] IMAGE_REF');
  const root = resolve(parsed.values.root ?? '/var/lib/containerd-nydus');
  const traces = readTraces(resolve(root, 'traces'), image);
  const chosen = parsed.values.all ? traces : traces.slice(0, 1);
  if (parsed.values.raw) process.stdout.write(`${JSON.stringify(parsed.values.all ? chosen : chosen[0], null, 2)}\n`);
  else {
    const seen = new Set<string>();
    const paths = chosen.flatMap((t) => t.files.map((f) => f.path)).filter((p) => !seen.has(p) && seen.add(p));
    process.stdout.write(paths.length > 0 ? `${paths.join('\n')}\n` : '');
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'trace') return traceCommand(argv.slice(1));
  const s = settingsOf(argv);
  if (!s) return 0;
  const base = s.nydusdConfig !== undefined
    ? parseNydusdTemplate((() => {
      try { return readFileSync(s.nydusdConfig, 'utf8'); } catch (e) { throw new UsageError('ERR_BAD_CONFIG', `Cannot read --nydusd-config ${s.nydusdConfig}: ${(e as Error).message}`); }
    })(), s.nydusdConfig)
    : DEFAULT_NYDUSD_TEMPLATE;
  const template = s.fsDriver !== undefined ? { ...base, fs_driver: s.fsDriver } : base;
  mkdirSync(s.root, { recursive: true, mode: 0o700 });
  const root = realpathSync(s.root);
  const logger = createStreamLogger(s.logLevel);
  for (const n of s.configNotes) logger.info(`config: ${n}`);
  const resolver = new ImageResolver({
    plainHttp: s.plainHttp, insecure: s.insecure, dockerConfigPath: defaultDockerConfigPath(process.env, homedir()),
    platform: { os: 'linux', architecture: ociArch() }, logger: logger.child({ component: 'registry' }),
  });
  const daemons = new DaemonManager({
    dir: resolve(root, 'nydusd'), nydusdPath: s.nydusdPath, logLevel: s.logLevel === 'trace' ? 'debug' : s.logLevel,
    id: 'nydus-snapshotter-shared', logger,
  });
  const traces = new TraceRecorder({
    dir: resolve(root, 'traces'), logger: logger.child({ component: 'trace' }),
    fetchTrace: (mp, since, max) => daemons.trace(mp, since, max),
  });
  const snapshotter = await NydusSnapshotter.open({ root, resolver, daemons, nydusdTemplate: template, logger, traces });
  let server: SnapshotterServer | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping', { reason: why });
      await server?.close();
      await traces.close();
      await snapshotter.close();
      await resolver.close();
      await daemons.close({ stopDaemon: false });
    })();
    return stopping;
  };
  const exitAfter = (why: string): void => { void stop(why).then(() => process.exit(0), (e: unknown) => { logger.error('stop failed', { error: (e as Error).message }); process.exit(1); }); };
  process.on('SIGTERM', () => exitAfter('SIGTERM'));
  process.on('SIGINT', () => exitAfter('SIGINT'));
  try {
    server = await serveSnapshotter(s.address, snapshotter, logger.child({ component: 'grpc' }));
  } catch (e) {
    await stop('start-up failed');
    throw e;
  }
  logger.info('snapshotter serving', { address: s.address, root, nydusd: s.nydusdPath, pid: process.pid });
  // nydusd starts now (unless one runs already), off the first image's start-up path.
  daemons.prestart();
  await new Promise<void>(() => undefined);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`nydus-snapshotter: error: ${msg}${e instanceof NydusError ? ` [${e.code}]` : ''}\n`);
  if (process.env.NYDUS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
