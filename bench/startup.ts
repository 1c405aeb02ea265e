/**
 * bench:startup — real programs started in containers through containerd and a snapshotter, from
 * nothing local, over an emulated network link: OCI vs eStargz vs Nydus without a profile, with a
 * learned profile, and warm. Issue 13's benchmark; not a test (nothing here asserts a time).
 *
 * Programs (bench/startup-programs.ts), each one image layer with its libraries (from ldd) and
 * busybox-static for sh:
 *  - tsc:    /usr/bin/node runs this checkout's node_modules/typescript/lib/tsc.js on a project of
 *            a few .ts files (`node /app/node_modules/typescript/lib/tsc.js -p /app/proj`); ready
 *            when tsc exits 0 and `READY tsc <emitted .js files>` is printed;
 *  - python: pyenv's CPython 3.10 imports ~95 standard modules (C extensions and their libraries
 *            included) and uses a few (sqlite, json, lzma, zip, asyncio); `READY python <n>`.
 *
 * Images (BENCH_SIZES, default 300, 1300 and 4096 MiB): three layers, two of real data and the
 * program's layer on top. The data are files of this machine (/usr/lib, /usr/share, /usr/local,
 * /root/.pyenv, this checkout's node_modules without typescript; one path per inode, the program
 * layers' own files left out, at most 64 MiB a file) in a fixed pseudo-random order, the first
 * (size - largest program layer) of them, so a smaller image's data are the start of a larger
 * one's and the program is the same at every size. This machine holds ~6.9 GB of such files, so
 * 4 GiB needs no synthetic data (the count is logged at start; a size that runs out is logged and
 * built smaller). Both programs' images share the same data layers (one gzip per size).
 * The OCI image (gzip layers, umoci) is pushed to a local docker-registry with skopeo, then
 * converted there: Nydus by bin/nydusify convert (no --prefetch-patterns), eStargz by
 * `ctr-remote images convert --estargz --oci` (and `ctr-remote images optimize --oci`, which runs
 * the image's command once and records its accesses) in a conversion containerd, pushed with
 * `ctr images push`. Conversions and pushes go to the registry directly.
 *
 * The link (bench/link-proxy.ts, BENCH_LINKS, default `10ms-1g,25ms-200m`): a TCP proxy in this
 * process in front of the registry, delaying each direction (10 ms each way at 1 Gbit/s, 25 ms
 * each way at 200 Mbit/s) and capping each direction's bandwidth for all connections together; a
 * new connection pays one round trip for its handshake. Every run reaches the registry through
 * it (image references name the proxy's host:port; the registry is the same): containerd,
 * ctr-remote, containerd-stargz-grpc, nydus-snapshotter and nydusd. It counts bytes each way,
 * connections and HTTP requests. The kernel here has no netem; the proxy shares the CPUs with
 * everything else, so at 1 Gbit/s it adds some CPU time of its own.
 *
 * Columns (BENCH_COLUMNS, default oci,estargz,estargz-opt,nydus,learned,warm):
 *  oci          `ctr images pull --plain-http` (overlayfs, full pull + unpack) + `ctr run --rm`;
 *  estargz      ../shared/peers/estargz (containerd-stargz-grpc 0.12, defaults: background fetch
 *               and prefetch on), `ctr-remote image rpull --snapshotter stargz` + `ctr run`;
 *  estargz-opt  the same on the image of `ctr-remote images optimize` (if optimize works here; if
 *               not, the column says why);
 *  nydus        bin/nydus-snapshotter with its defaults (--plain-http), `ctr-remote image rpull
 *               --snapshotter nydus` + `ctr run`;
 *  learned      Nydus cold with the learned profile: the first `nydus` run of an image is the
 *               training run; its trace is taken (`nydus-snapshotter trace --root R REF`, else
 *               `nydusctl --sock <root>/nydusd/api.sock trace --mountpoint M` before the mount
 *               goes) and published with `nydusify profile push --target REF --prefetch-files -`;
 *               then cold runs as `nydus` (the snapshotter finds the profile at mount);
 *  learned-opt  the same trace through `nydusify optimize --source REF --target REF:opt
 *               --prefetch-files -` (a new image tag), cold runs of that tag (off by default);
 *  warm         right after each `nydus` cold run: containerd restarted on the same root, the
 *               same snapshotter and nydusd (blob cache filled), page caches dropped, `ctr run`.
 * A command of the contract that does not exist yet makes its column "n/a (command missing)";
 * any other failure of a column is printed in its cell and the rest of the run goes on.
 *
 * Every cold run starts from a fresh containerd (startContainerd in a new temporary directory),
 * a fresh snapshotter root and dropped page caches; the clock runs from the pull to the ready
 * line. Bytes and requests are the proxy's counts when the ready line appears (registry → node
 * bytes; requests and connections opened); for Nydus, nydusd's backend metrics at that moment
 * are printed beside them. The floor is what the link alone costs: bytes of the files the program
 * opens (strace in a chroot of its layer) / bandwidth, plus the program's own time on this host
 * with a warm page cache.
 *
 * OCI runs once per cell; every other column BENCH_REPS times (default 3), the median reported.
 * Everything started (registry, proxy, containerds, snapshotters, nydusd) is stopped by its handle
 * and every mount removed, also on failure or Ctrl-C (bench/bench-run.ts's cleanup stack).
 *
 * Usage: npm run bench:startup
 *   BENCH_SIZES=300,1300,4096  BENCH_LINKS=10ms-1g,25ms-200m  BENCH_PROGRAMS=tsc,python
 *   BENCH_COLUMNS=oci,estargz,estargz-opt,nydus,learned,learned-opt,warm  BENCH_REPS=3
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { apiRequest } from '../src/api/api-client.js';
import { cleanupTempDir, run, runCli, REPO_ROOT } from '../test/helpers/mounts.js';
import { layerTar, pushImage, buildOciImage, run as runTool } from '../test/helpers/oci-image.js';
import { startRegistry } from '../test/helpers/registry.js';
import { mountsUnder, startContainerd, startNydusSnapshotter, stopNydusd, unmountUnder, type StartedContainerd } from '../test/helpers/containerd.js';
import { MiB, collectFiles, dropCaches, fmtMiB, fmtS, launcherMode, linkIntoLayers, pickFiles, type SrcFile } from './bench-images.js';
import { cleanupMark, defer, fsTypesUnder, manifestOf, nydusdBackendMetrics, runUntilReady, unwindOnSignals, unwindTo, type BackendMetrics } from './bench-run.js';
import { parseLinkProfile, startLinkProxy, type LinkProfile, type LinkProxy } from './link-proxy.js';
import { estargzBinary, startStargz } from './estargz-peer.js';
import { PROGRAM_NAMES, buildProgramLayer, hostRun, type HostRun, type ProgramLayer, type ProgramName } from './startup-programs.js';

const log = (s: string): void => { process.stderr.write(`[startup ${new Date().toISOString().slice(11, 19)}] ${s}\n`); };

const COLUMN_NAMES = ['oci', 'estargz', 'estargz-opt', 'nydus', 'learned', 'learned-opt', 'warm'] as const;
type Column = typeof COLUMN_NAMES[number];
const LABEL: Record<Column, string> = {
  oci: 'OCI', estargz: 'eStargz', 'estargz-opt': 'eStargz optimized', nydus: 'Nydus no profile',
  learned: 'Nydus learned (profile)', 'learned-opt': 'Nydus learned (optimize)', warm: 'Nydus warm',
};

function envList(name: string, def: string): string[] {
  return (process.env[name] ?? def).split(',').map((s) => s.trim()).filter(Boolean);
}
const SIZES_MIB = envList('BENCH_SIZES', '300,1300,4096').map((s) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 150) throw new Error(`Cannot use BENCH_SIZES entry "${s}": a size in MiB of at least 150`);
  return n;
});
const LINKS: LinkProfile[] = envList('BENCH_LINKS', '10ms-1g,25ms-200m').map(parseLinkProfile);
const PROGRAMS: ProgramName[] = envList('BENCH_PROGRAMS', 'tsc,python').map((p) => {
  if (!(PROGRAM_NAMES as readonly string[]).includes(p)) throw new Error(`Cannot use BENCH_PROGRAMS entry "${p}": one of ${PROGRAM_NAMES.join(', ')}`);
  return p as ProgramName;
});
const COLUMNS: Column[] = envList('BENCH_COLUMNS', 'oci,estargz,estargz-opt,nydus,learned,warm').map((c) => {
  if (!(COLUMN_NAMES as readonly string[]).includes(c)) throw new Error(`Cannot use BENCH_COLUMNS entry "${c}": one of ${COLUMN_NAMES.join(', ')}`);
  return c as Column;
});
const REPS = Math.max(1, Number(process.env['BENCH_REPS'] ?? '3'));
/** `--estargz-compression-level` of the eStargz conversions (unset: ctr-remote's default, 9). */
const ESTARGZ_LEVEL = process.env['BENCH_ESTARGZ_LEVEL'] ? ['--estargz-compression-level', String(Number(process.env['BENCH_ESTARGZ_LEVEL']))] : [];
const has = (c: Column): boolean => COLUMNS.includes(c);
/** The Nydus cold runs also give the training trace and host the warm runs. */
const needNydusRuns = has('nydus') || has('warm') || has('learned') || has('learned-opt');

/** Targets of issue 13. */
const T = { learnedVsOci: 20, learnedVsOciAtMiB: 1300, learnedVsWarm: 1.3, learnedVsEstargzOpt: 2, noProfileVsOci: 10, noProfileVsEstargz: 2, growth: 1.3 };

const DATA_ROOTS = ['/usr/lib', '/usr/share', '/usr/local', '/root/.pyenv', path.join(REPO_ROOT, 'node_modules')];

// ---------------------------------------------------------------------------------------------
// Results

/** One run. */
interface RunResult {
  /** Pull + run until the ready line (ms); for warm, run only. */
  ms: number; pullMs: number;
  /** Proxy counts at the ready line. */
  down: number; up: number; requests: number; connections: number;
  backend?: BackendMetrics;
  mountFs?: string;
}

/** A cell: the median run of its repetitions, or why there is none. */
interface Cell { runs: RunResult[]; median?: RunResult; note?: string }

const cells = new Map<string, Cell>();
const key = (size: number, link: string, prog: string, col: Column): string => `${size}|${link}|${prog}|${col}`;
function addRun(k: string, r: RunResult): void {
  const c = cells.get(k) ?? { runs: [] };
  c.runs.push(r);
  const sorted = [...c.runs].sort((a, b) => a.ms - b.ms);
  c.median = sorted[Math.floor((sorted.length - 1) / 2)] as RunResult;
  cells.set(k, c);
}
function noteCell(k: string, note: string): void {
  const c = cells.get(k) ?? { runs: [] };
  if (!c.note) c.note = note;
  cells.set(k, c);
}
const firstLine = (s: string): string => s.trim().split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 160) ?? '';

/** Per size: image facts. */
interface ImageInfo { size: number; dataFiles: number; dataBytes: number; prog: Record<string, { ociMiB: number; nydusMiB: number; estargzMiB?: number; convertS: number; estargzS?: number; estargzOptS?: number }> }
const images: ImageInfo[] = [];
/** Per program: host facts; per size×program: the trace's length and how it was taken. */
const hostRuns = new Map<string, HostRun>();
const layerBytes = new Map<string, number>();
const traces = new Map<string, { paths: number; how: string }>();
/** Why a column is n/a for every cell (commands missing, optimize failing). */
const columnNotes = new Map<Column, string>();

// ---------------------------------------------------------------------------------------------
// Commands of the contract that may not exist yet

/** Whether `bin/<tool> <sub…> --help` exists: exits 0 and its help names the last word of `sub`. */
async function subcommandExists(tool: string, sub: readonly string[]): Promise<boolean> {
  const r = await run(path.join(REPO_ROOT, 'bin', tool), [...sub, '--help'], { timeoutMs: 60_000 });
  const text = r.stdout.toString() + r.stderr;
  return r.code === 0 && new RegExp(`(^|\\s)${sub[sub.length - 1] ?? ''}(\\s|$)`, 'm').test(text) && !/unknown command|Unexpected argument/i.test(text);
}

interface Tools { snapshotterTrace: boolean; nydusctlTrace: boolean; profilePush: boolean; optimize: boolean; profileRm: boolean }

async function probeTools(): Promise<Tools> {
  const nydusctlHelp = await run(path.join(REPO_ROOT, 'bin', 'nydusctl'), ['--help'], { timeoutMs: 60_000 });
  return {
    snapshotterTrace: await subcommandExists('nydus-snapshotter', ['trace']),
    nydusctlTrace: /^\s+trace\b/m.test(nydusctlHelp.stdout.toString() + nydusctlHelp.stderr),
    profilePush: await subcommandExists('nydusify', ['profile', 'push']),
    profileRm: await subcommandExists('nydusify', ['profile', 'rm']),
    optimize: await subcommandExists('nydusify', ['optimize']),
  };
}

// ---------------------------------------------------------------------------------------------
// Runs

type Kind = 'oci' | 'stargz' | 'nydus';

interface RunContext { work: string; proxy: LinkProxy; stargzBin?: string; layer: ProgramLayer }

/** What a Nydus cold run does besides the measured start. */
interface AfterNydus {
  /**
   * The training run: the container stays 3 s after its ready line (`/app/run.sh && sleep 3`, the
   * time to ready is unchanged) so that its mounts can be asked for their traces at the ready line
   * (`atReady`, nydusctl); `afterExit` runs once it is gone, before anything is stopped.
   */
  training?: { atReady(sock: string, mountIds: string[]): Promise<void>; afterExit(sroot: string, ref: string): Promise<void> };
  /** Also run warm (same snapshotter root, containerd restarted). */
  warm?: (r: RunResult) => void;
}

let containerSeq = 0;

/** The ready line's check: the program ran and did its work. */
function checkReady(layer: ProgramLayer, m: RegExpExecArray, what: string): void {
  if (m[1] !== layer.program.name || Number(m[2]) !== layer.program.expect) {
    throw new Error(`Cannot count the ${what} run: it printed "${m[0]}", expected READY ${layer.program.name} ${layer.program.expect}`);
  }
}

/** One cold start of `ref` (through the proxy) with `kind`; everything it starts is stopped before it returns. */
async function coldRun(kind: Kind, ref: string, c: RunContext, after: AfterNydus = {}): Promise<RunResult> {
  const mark = cleanupMark();
  const dir = fs.mkdtempSync(path.join(c.work, `run-${kind}-`));
  defer(`remove ${dir}`, () => cleanupTempDir(dir));
  try {
    const sroot = path.join(dir, 'snapshotter');
    const ssock = path.join(dir, 'snapshotter.sock');
    let snapshotters: Record<string, string> = {};
    let nydusdSock: string | undefined;
    if (kind === 'nydus') {
      const sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: ['--plain-http'] });
      nydusdSock = sn.nydusdSocket;
      defer('stop the snapshotter and its nydusd', async () => {
        await sn.stop();
        await stopNydusd(sroot);
        await unmountUnder([sroot]);
      });
      snapshotters = { nydus: ssock };
    } else if (kind === 'stargz') {
      if (!c.stargzBin) throw new Error('the eStargz peer was not built');
      const sg = await startStargz(c.stargzBin, path.join(dir, 'stargz'), [c.proxy.host]);
      defer('stop containerd-stargz-grpc', () => sg.stop());
      snapshotters = { stargz: sg.address };
    }
    const cdDir = path.join(dir, 'containerd');
    let cd: StartedContainerd = await startContainerd({ dir: cdDir, snapshotters });
    defer('stop containerd', () => cd.stop());
    const snapName = kind === 'nydus' ? 'nydus' : kind === 'stargz' ? 'stargz' : undefined;
    const snap = snapName ? ['--snapshotter', snapName] : [];
    await dropCaches();
    c.proxy.take();
    const t0 = performance.now();
    const pull = kind === 'oci'
      ? await cd.ctr(['images', 'pull', '--plain-http', ref], { timeoutMs: 60 * 60_000 })
      : await cd.ctrRemote(['image', 'rpull', '--plain-http', ...snap, ref], { timeoutMs: 60 * 60_000 });
    if (pull.code !== 0) throw new Error(`Cannot pull ${ref} (${kind}): ${firstLine(pull.stderr)}`);
    const pullMs = performance.now() - t0;
    let atReady: { down: number; up: number; requests: number; connections: number } | undefined;
    let backend: BackendMetrics | undefined;
    let mountFs: string | undefined;
    const onReady = async (): Promise<void> => {
      const p = c.proxy.peek();
      atReady = { down: p.down, up: p.up, requests: p.requests, connections: p.connections };
      if (kind === 'nydus') mountFs = [...new Set(fsTypesUnder(path.join(sroot, 'mnt')))].join('+');
      if (kind === 'stargz') mountFs = [...new Set(fsTypesUnder(path.join(dir, 'stargz', 'root')))].join('+');
      if (nydusdSock) {
        try {
          backend = await nydusdBackendMetrics(nydusdSock);
        } catch (e) {
          log(`nydusd metrics not read: ${(e as Error).message}`);
        }
        if (after.training) {
          await new Promise((r) => setTimeout(r, 300));
          let mountIds: string[] = [];
          try {
            const daemon = await apiRequest(nydusdSock, 'GET', '/api/v1/daemon');
            mountIds = Object.keys((daemon.body as { backend_collection?: Record<string, unknown> }).backend_collection ?? {});
          } catch (e) {
            log(`nydusd's mounts not read: ${(e as Error).message}`);
          }
          await after.training.atReady(nydusdSock, mountIds);
        }
      }
    };
    const id = `startup-${process.pid}-${++containerSeq}`;
    const cmd = after.training ? ['/bin/sh', '-c', `${c.layer.program.cmd.join(' ')} && sleep 3`] : [];
    const ready = await runUntilReady(cd, ['run', '--rm', '--runc-root', cd.runcRoot, ...snap, ref, id, ...cmd], t0, c.layer.program.ready, onReady);
    checkReady(c.layer, ready.match, kind);
    if (kind === 'nydus' && !/fuse|erofs/.test(mountFs ?? '')) throw new Error(`Cannot count the Nydus run: nothing of nydusd was mounted under the snapshotter root (found "${mountFs ?? ''}")`);
    const result: RunResult = {
      ms: ready.readyAt, pullMs, ...(atReady ?? { down: 0, up: 0, requests: 0, connections: 0 }),
      ...(backend ? { backend } : {}), ...(mountFs !== undefined ? { mountFs } : {}),
    };
    if (kind === 'nydus' && nydusdSock) {
      if (after.training) await after.training.afterExit(sroot, ref);
      if (after.warm) {
        // The container's snapshot reaches the snapshotter (nydusd unmounts) at a collection.
        await cd.gc();
        const end = Date.now() + 10_000;
        while (mountsUnder([path.join(sroot, 'mnt')]).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        await cd.stop();
        cd = await startContainerd({ dir: cdDir, snapshotters });
        await dropCaches();
        c.proxy.take();
        const w0 = performance.now();
        let wBackend: BackendMetrics | undefined;
        let wAt: { down: number; up: number; requests: number; connections: number } | undefined;
        const w = await runUntilReady(cd, ['run', '--rm', '--runc-root', cd.runcRoot, ...snap, ref, `${id}-warm`], w0, c.layer.program.ready, async () => {
          const p = c.proxy.peek();
          wAt = { down: p.down, up: p.up, requests: p.requests, connections: p.connections };
          try { wBackend = await nydusdBackendMetrics(nydusdSock as string); } catch { /* metrics are extra */ }
        });
        checkReady(c.layer, w.match, 'warm');
        after.warm({ ms: w.readyAt, pullMs: 0, ...(wAt ?? { down: 0, up: 0, requests: 0, connections: 0 }), ...(wBackend ? { backend: wBackend } : {}) });
      }
    }
    return result;
  } finally {
    await unwindTo(mark);
  }
}

// ---------------------------------------------------------------------------------------------
// Images

interface Refs { src: string; nydus: string; nydusOpt: string; estargz: string; estargzOpt: string }
const refsOf = (host: string, size: number, prog: string): Refs => ({
  src: `${host}/src/img${size}-${prog}:1`,
  nydus: `${host}/nydus/img${size}-${prog}:1`,
  nydusOpt: `${host}/nydus/img${size}-${prog}:opt`,
  estargz: `${host}/estargz/img${size}-${prog}:1`,
  estargzOpt: `${host}/estargz-opt/img${size}-${prog}:1`,
});
const repoTag = (ref: string): [string, string] => {
  const rest = ref.slice(ref.indexOf('/') + 1);
  const i = rest.lastIndexOf(':');
  return [rest.slice(0, i), rest.slice(i + 1)];
};
const layerMiB = async (host: string, ref: string): Promise<number> => {
  const [repo, tag] = repoTag(ref);
  const m = await manifestOf(host, repo, tag);
  return m.layers.reduce((s, l) => s + l.size, 0) / MiB;
};

/** Build and push the images of one size (both programs), convert them; fills `images`. */
async function buildImages(size: number, all: readonly SrcFile[], layers: Map<ProgramName, ProgramLayer>, progBytes: number, work: string, regHost: string, conv: StartedContainerd | undefined): Promise<void> {
  const idir = path.join(work, `img-${size}`);
  const { picked, total } = pickFiles(all, size * MiB - progBytes);
  if (total < size * MiB - progBytes - 16 * MiB) log(`${size} MiB: only ${fmtMiB(total)} MiB of data files available`);
  log(`${size} MiB: data ${picked.length} files, ${fmtMiB(total)} MiB in two layers (+ program layer); building`);
  const dataDirs = [path.join(idir, 'data0'), path.join(idir, 'data1')];
  linkIntoLayers(picked, dataDirs);
  const build = path.join(idir, 'build');
  const base = await buildOciImage({ dir: build, layers: dataDirs, name: 'data' });
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
  const info: ImageInfo = { size, dataFiles: picked.length, dataBytes: total, prog: {} };
  for (const prog of PROGRAMS) {
    const layer = layers.get(prog) as ProgramLayer;
    const refs = refsOf(regHost, size, prog);
    const tarFile = path.join(build, `.prog-${prog}.tar`);
    await layerTar(layer.dir, tarFile);
    await runTool('umoci', ['raw', 'add-layer', '--image', `${base.layout}:data`, '--tag', prog, '--history.created_by', `program ${prog}`, tarFile], { timeoutMs: 30 * 60_000 });
    fs.rmSync(tarFile, { force: true });
    await runTool('umoci', ['config', '--image', `${base.layout}:${prog}`, ...layer.program.cmd.flatMap((c) => ['--config.cmd', c])]);
    const t0 = performance.now();
    await pushImage(`oci:${base.layout}:${prog}`, refs.src, { tlsVerify: false });
    log(`${size} MiB ${prog}: pushed in ${fmtS(performance.now() - t0)} s; nydusify convert`);
    const t1 = performance.now();
    const cv = await runCli('nydusify', ['convert', '--plain-http', '--source', refs.src, '--target', refs.nydus, '--work-dir', path.join(idir, 'conv')], { timeoutMs: 120 * 60_000 });
    if (cv.code !== 0) throw new Error(`Cannot convert ${refs.src} to Nydus: nydusify exited ${cv.code}: ${cv.stderr.slice(-2000)}`);
    const convertS = (performance.now() - t1) / 1000;
    fs.rmSync(path.join(idir, 'conv'), { recursive: true, force: true });
    const p: ImageInfo['prog'][string] = { ociMiB: await layerMiB(regHost, refs.src), nydusMiB: await layerMiB(regHost, refs.nydus), convertS };
    info.prog[prog] = p;
    if (conv && (has('estargz') || has('estargz-opt'))) {
      log(`${size} MiB ${prog}: nydusify convert ${convertS.toFixed(1)} s; eStargz convert`);
      await conv.ctrOk(['images', 'pull', '--plain-http', refs.src], { timeoutMs: 60 * 60_000 });
      const t2 = performance.now();
      const ce = await conv.ctrRemote(['images', 'convert', '--estargz', '--oci', ...ESTARGZ_LEVEL, refs.src, refs.estargz], { timeoutMs: 120 * 60_000 });
      if (ce.code !== 0) {
        noteCell(`images|${size}|${prog}|estargz`, `convert failed: ${firstLine(ce.stderr)}`);
      } else {
        p.estargzS = (performance.now() - t2) / 1000;
        await conv.ctrOk(['images', 'push', '--plain-http', refs.estargz], { timeoutMs: 60 * 60_000 });
        p.estargzMiB = await layerMiB(regHost, refs.estargz);
      }
      if (has('estargz-opt') && !columnNotes.has('estargz-opt')) {
        const t3 = performance.now();
        // From the eStargz image with --reuse: layers the workload does not touch (the data) are
        // kept as converted above, not converted again.
        const fromEstargz = p.estargzS !== undefined;
        const co = await conv.ctrRemote(['images', 'optimize', '--oci', '--period', '20', ...ESTARGZ_LEVEL, ...(fromEstargz ? ['--reuse', refs.estargz] : [refs.src]), refs.estargzOpt], { timeoutMs: 60 * 60_000 });
        if (co.code !== 0) {
          const why = `ctr-remote images optimize failed here: ${firstLine(co.stderr)}`;
          log(why);
          columnNotes.set('estargz-opt', why);
        } else {
          p.estargzOptS = (performance.now() - t3) / 1000;
          await conv.ctrOk(['images', 'push', '--plain-http', refs.estargzOpt], { timeoutMs: 60 * 60_000 });
        }
      }
      for (const r of [refs.src, refs.estargz, refs.estargzOpt]) await conv.ctr(['images', 'rm', r]);
      await conv.gc();
    }
  }
  images.push(info);
  fs.rmSync(idir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The measured part of one size × program

async function measure(size: number, prog: ProgramName, layer: ProgramLayer, work: string, regHost: string, proxy: LinkProxy, stargzBin: string | undefined, tools: Tools): Promise<void> {
  const refs = refsOf(proxy.host, size, prog);
  const direct = refsOf(regHost, size, prog);
  const ctx: RunContext = { work, proxy, layer, ...(stargzBin ? { stargzBin } : {}) };
  let trace: string[] | undefined;
  let traceNote: string | undefined;
  const attempt = async (k: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      const msg = (e as Error).message;
      log(`${k}: ${msg}`);
      noteCell(k, `failed: ${firstLine(msg)}`);
    }
  };
  const keepTrace = (lines: string[], how: string): void => {
    trace = lines;
    traces.set(`${size}|${prog}`, { paths: lines.length, how });
  };
  const training: NonNullable<AfterNydus['training']> = {
    atReady: async (sock, mountIds) => {
      if (!tools.nydusctlTrace) return;
      const seen = new Set<string>();
      const lines: string[] = [];
      for (const m of mountIds) {
        const r = await runCli('nydusctl', ['--sock', sock, 'trace', '--mountpoint', m], { timeoutMs: 120_000 });
        if (r.code !== 0) { traceNote = `nydusctl trace failed (exit ${r.code}): ${firstLine(r.stderr)}`; continue; }
        for (const l of r.stdout.toString().split('\n')) if (l.startsWith('/') && !seen.has(l)) { seen.add(l); lines.push(l); }
      }
      if (lines.length > 0) keepTrace(lines, 'nydusctl trace at the ready line');
      else traceNote ??= `nydusctl trace gave no paths (${mountIds.length} mounts)`;
    },
    afterExit: async (sroot, ref) => {
      if (tools.snapshotterTrace) {
        const r = await run(path.join(REPO_ROOT, 'bin', 'nydus-snapshotter'), ['trace', '--root', sroot, ref], { timeoutMs: 120_000 });
        const lines = r.stdout.toString().split('\n').filter((l) => l.startsWith('/'));
        if (r.code === 0 && lines.length > 0) keepTrace(lines, 'nydus-snapshotter trace');
        else traceNote = `nydus-snapshotter trace gave no list (exit ${r.code}): ${firstLine(r.stderr)}`;
      }
      if (!trace) traceNote ??= 'n/a (command missing: nydus-snapshotter trace, nydusctl trace)';
    },
  };

  // Phase A: everything that must not see the learned profile.
  for (const [li, link] of LINKS.entries()) {
    proxy.setProfile(link);
    const k = (c: Column): string => key(size, link.name, prog, c);
    if (has('oci')) {
      await attempt(k('oci'), async () => {
        const r = await coldRun('oci', refs.src, ctx);
        addRun(k('oci'), r);
        log(`${size} MiB ${link.name} ${prog} OCI: ${fmtS(r.ms)} s, ${fmtMiB(r.down)} MiB, ${r.requests} requests`);
      });
    }
    for (let rep = 0; rep < REPS; rep++) {
      for (const col of ['estargz', 'estargz-opt'] as const) {
        if (!has(col) || !stargzBin) continue;
        if (columnNotes.has(col)) { noteCell(k(col), columnNotes.get(col) as string); continue; }
        const conv = cells.get(`images|${size}|${prog}|estargz`)?.note;
        if (col === 'estargz' && conv) { noteCell(k(col), conv); continue; }
        await attempt(k(col), async () => {
          const r = await coldRun('stargz', col === 'estargz' ? refs.estargz : refs.estargzOpt, ctx);
          addRun(k(col), r);
          log(`${size} MiB ${link.name} ${prog} ${LABEL[col]}: ${fmtS(r.ms)} s, ${fmtMiB(r.down)} MiB, ${r.requests} requests (${r.mountFs ?? '?'})`);
        });
      }
      if (needNydusRuns) {
        const train = li === 0 && rep === 0 && (has('learned') || has('learned-opt'));
        await attempt(k('nydus'), async () => {
          const r = await coldRun('nydus', refs.nydus, ctx, {
            ...(train ? { training } : {}),
            ...(has('warm') ? { warm: (w: RunResult) => { addRun(k('warm'), w); log(`${size} MiB ${link.name} ${prog} Nydus warm: ${fmtS(w.ms)} s, ${fmtMiB(w.down)} MiB`); } } : {}),
          });
          addRun(k('nydus'), r);
          log(`${size} MiB ${link.name} ${prog} Nydus: ${fmtS(r.ms)} s (pull ${fmtS(r.pullMs)}), ${fmtMiB(r.down)} MiB, ${r.requests} requests${r.backend ? `, nydusd ${fmtMiB(r.backend.bytes)} MiB / ${r.backend.reads} reads` : ''}`);
        });
      }
    }
  }

  // Learning: publish the trace as a profile, or optimize the image with it.
  const learnedRefs: Array<[Column, string]> = [];
  if (has('learned') || has('learned-opt')) {
    if (!trace) {
      for (const c of ['learned', 'learned-opt'] as const) for (const l of LINKS) noteCell(key(size, l.name, prog, c), traceNote ?? 'no trace');
    } else {
      const list = trace.join('\n') + '\n';
      if (has('learned')) {
        if (!tools.profilePush) {
          for (const l of LINKS) noteCell(key(size, l.name, prog, 'learned'), 'n/a (command missing: nydusify profile push)');
        } else {
          const r = await runCli('nydusify', ['profile', 'push', '--plain-http', '--target', direct.nydus, '--prefetch-files', '-'], { input: list, timeoutMs: 600_000 });
          if (r.code === 0) learnedRefs.push(['learned', refs.nydus]);
          else for (const l of LINKS) noteCell(key(size, l.name, prog, 'learned'), `nydusify profile push failed: ${firstLine(r.stderr)}`);
        }
      }
      if (has('learned-opt')) {
        if (!tools.optimize) {
          for (const l of LINKS) noteCell(key(size, l.name, prog, 'learned-opt'), 'n/a (command missing: nydusify optimize)');
        } else {
          const r = await runCli('nydusify', ['optimize', '--plain-http', '--source', direct.nydus, '--target', direct.nydusOpt, '--prefetch-files', '-', '--work-dir', path.join(work, 'optimize')], { input: list, timeoutMs: 3600_000 });
          fs.rmSync(path.join(work, 'optimize'), { recursive: true, force: true });
          if (r.code === 0) learnedRefs.push(['learned-opt', refs.nydusOpt]);
          else for (const l of LINKS) noteCell(key(size, l.name, prog, 'learned-opt'), `nydusify optimize failed: ${firstLine(r.stderr)}`);
        }
      }
    }
  }

  // Phase B: cold runs with what was learned.
  for (const link of LINKS) {
    proxy.setProfile(link);
    for (let rep = 0; rep < REPS; rep++) {
      for (const [col, ref] of learnedRefs) {
        const k = key(size, link.name, prog, col);
        await attempt(k, async () => {
          const r = await coldRun('nydus', ref, ctx);
          addRun(k, r);
          log(`${size} MiB ${link.name} ${prog} ${LABEL[col]}: ${fmtS(r.ms)} s, ${fmtMiB(r.down)} MiB, ${r.requests} requests${r.backend ? `, nydusd ${fmtMiB(r.backend.bytes)} MiB / ${r.backend.reads} reads` : ''}`);
        });
      }
    }
  }
  if (learnedRefs.some(([c]) => c === 'learned') && tools.profileRm) {
    await runCli('nydusify', ['profile', 'rm', '--plain-http', '--target', direct.nydus, '--all'], { timeoutMs: 120_000 });
  }
}

// ---------------------------------------------------------------------------------------------
// Plan, estimate, report

/**
 * A rough duration (minutes) from rates seen on this 2-CPU machine: umoci gzip ~40 MiB/s, nydusify
 * convert ~20 MiB/s, each ctr-remote eStargz pass (convert, optimize) ~5 MiB/s, OCI unpack
 * ~35 MiB/s after a transfer of ~0.45 of the bytes, ~10 s per lazy cold run with its setup.
 */
function estimateMinutes(): number {
  let s = 60;
  const estargzPasses = (has('estargz') || has('estargz-opt') ? 1 : 0) + (has('estargz-opt') ? 1 : 0);
  for (const size of SIZES_MIB) {
    s += size / 40 + PROGRAMS.length * (size / 20 + estargzPasses * (size / 5 + 10));
    for (const link of LINKS) {
      if (has('oci')) s += PROGRAMS.length * ((size * 0.45) / (link.bytesPerSec / MiB) + size / 35 + 5);
      const lazyCols = (has('estargz') ? 1 : 0) + (has('estargz-opt') ? 1 : 0) + (needNydusRuns ? 1 : 0) + (has('warm') ? 0.5 : 0) + (has('learned') ? 1 : 0) + (has('learned-opt') ? 1 : 0);
      s += PROGRAMS.length * REPS * 10 * lazyCols;
    }
  }
  return s / 60;
}

const pad = (s: string, n: number): string => s.padEnd(n);
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const fmtX = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(x < 10 ? 2 : 1)}x`);

function report(totalMs: number, tools: Tools, layers: Map<ProgramName, ProgramLayer>): string {
  const out: string[] = [];
  out.push('');
  out.push(`Container start-up of real programs over an emulated link, from nothing local (fresh containerd and snapshotter roots, page caches dropped) to the ready line`);
  out.push(`(${os.cpus().length} CPUs; docker-registry on loopback behind the link proxy; OCI once, other columns median of ${REPS}; tools from ${launcherMode()})`);
  out.push(`Contract commands: nydus-snapshotter trace ${tools.snapshotterTrace ? 'yes' : 'missing'}, nydusctl trace ${tools.nydusctlTrace ? 'yes' : 'missing'}, nydusify profile push ${tools.profilePush ? 'yes' : 'missing'}, nydusify optimize ${tools.optimize ? 'yes' : 'missing'}`);
  for (const [c, n] of columnNotes) out.push(`${LABEL[c]}: ${n}`);
  out.push('');
  out.push('program  what                                                                              layer MiB  opens (files/MiB)  on host s');
  for (const p of PROGRAMS) {
    const h = hostRuns.get(p);
    const l = layers.get(p) as ProgramLayer;
    out.push(`${pad(p, 8)} ${pad(l.program.what, 81)} ${pad(fmtMiB(layerBytes.get(p) ?? 0), 10)} ${pad(h ? `${h.files} / ${fmtMiB(h.bytes)}` : '?', 18)} ${h ? fmtS(h.ms) : '?'}`);
  }
  out.push('');
  out.push('image     data files  data MiB  program  OCI gzip MiB  Nydus MiB  eStargz MiB  nydusify convert s  eStargz convert s  optimize s  trace');
  for (const i of images) {
    for (const p of PROGRAMS) {
      const x = i.prog[p];
      if (!x) continue;
      const tr = traces.get(`${i.size}|${p}`);
      out.push(`${pad(`${i.size} MiB`, 9)} ${pad(String(i.dataFiles), 11)} ${pad(fmtMiB(i.dataBytes), 9)} ${pad(p, 8)} ${pad(x.ociMiB.toFixed(1), 13)} ${pad(x.nydusMiB.toFixed(1), 10)} ${pad(x.estargzMiB?.toFixed(1) ?? '-', 12)} ${pad(x.convertS.toFixed(1), 19)} ${pad(x.estargzS?.toFixed(1) ?? '-', 18)} ${pad(x.estargzOptS?.toFixed(1) ?? '-', 11)} ${tr ? `${tr.paths} paths (${tr.how})` : '-'}`);
    }
  }
  const targets: string[] = [];
  const mark = (ok: boolean | undefined): string => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS');
  for (const size of SIZES_MIB) {
    for (const link of LINKS) {
      for (const prog of PROGRAMS) {
        const get = (c: Column): RunResult | undefined => cells.get(key(size, link.name, prog, c))?.median;
        const oci = get('oci');
        const h = hostRuns.get(prog);
        const floor = h ? h.bytes / link.bytesPerSec * 1000 : undefined;
        out.push('');
        out.push(`-- ${size} MiB, link ${link.name} (${link.delayMs} ms each way, ${(link.bytesPerSec * 8 / 1e6).toFixed(0)} Mbit/s), ${prog}${floor !== undefined && h ? `; floor ${fmtS(floor + h.ms)} s = ${fmtMiB(h.bytes)} MiB opened / bandwidth ${fmtS(floor)} s + program on host ${fmtS(h.ms)} s` : ''}`);
        out.push('column                    ready s  pull s  MiB down  requests  conns  nydusd MiB/reads  runs (s)              vs OCI');
        for (const col of COLUMNS) {
          const c = cells.get(key(size, link.name, prog, col));
          const m = c?.median;
          if (!m) {
            out.push(`${pad(LABEL[col], 25)} ${c?.note ?? columnNotes.get(col) ?? 'not run'}`);
            continue;
          }
          const runs = c.runs.map((r) => fmtS(r.ms)).join(' ');
          out.push(`${pad(LABEL[col], 25)} ${pad(fmtS(m.ms), 8)} ${pad(col === 'warm' ? '-' : fmtS(m.pullMs), 7)} ${pad(fmtMiB(m.down), 9)} ${pad(String(m.requests), 9)} ${pad(String(m.connections), 6)} ${pad(m.backend ? `${fmtMiB(m.backend.bytes)} / ${m.backend.reads}` : '-', 17)} ${pad(runs, 21)} ${col === 'oci' ? '' : fmtX(ratio(oci?.ms, m.ms))}${c.note ? `  (${c.note})` : ''}`);
        }
        const learned = get('learned') ?? get('learned-opt');
        const np = get('nydus');
        const es = get('estargz');
        const eso = get('estargz-opt');
        const w = get('warm');
        const line = (name: string, x: number | undefined, ok: boolean | undefined): void => { targets.push(`  ${pad(`${size} MiB ${link.name} ${prog}`, 24)} ${pad(name, 44)} ${pad(fmtX(x), 8)} ${mark(x === undefined ? undefined : ok)}`); };
        if (size === T.learnedVsOciAtMiB || !SIZES_MIB.includes(T.learnedVsOciAtMiB)) {
          const x = ratio(oci?.ms, learned?.ms);
          line(`learned vs OCI >= ${T.learnedVsOci}x${size === T.learnedVsOciAtMiB ? '' : ` (target at ${T.learnedVsOciAtMiB} MiB)`}`, x, x !== undefined && x >= T.learnedVsOci);
        }
        { const x = ratio(learned?.ms, w?.ms); line(`learned within ${T.learnedVsWarm}x of warm`, x, x !== undefined && x <= T.learnedVsWarm); }
        { const x = ratio(eso?.ms, learned?.ms); line(`learned vs optimized eStargz >= ${T.learnedVsEstargzOpt}x`, x, x !== undefined && x >= T.learnedVsEstargzOpt); }
        { const x = ratio(oci?.ms, np?.ms); line(`no profile vs OCI >= ${T.noProfileVsOci}x`, x, x !== undefined && x >= T.noProfileVsOci); }
        { const x = ratio(es?.ms, np?.ms); line(`no profile vs eStargz >= ${T.noProfileVsEstargz}x`, x, x !== undefined && x >= T.noProfileVsEstargz); }
        { const x = ratio(np?.down, es?.down); line('bytes no profile / eStargz <= 1x', x, x !== undefined && x <= 1); }
      }
    }
  }
  const lo = Math.min(...SIZES_MIB);
  const hi = Math.max(...SIZES_MIB);
  if (lo !== hi) {
    for (const link of LINKS) {
      for (const prog of PROGRAMS) {
        for (const col of ['nydus', 'learned', 'learned-opt'] as const) {
          if (!has(col)) continue;
          const a = cells.get(key(lo, link.name, prog, col))?.median;
          const b = cells.get(key(hi, link.name, prog, col))?.median;
          const x = ratio(b?.ms, a?.ms);
          targets.push(`  ${pad(`${link.name} ${prog}`, 24)} ${pad(`${LABEL[col]} growth ${lo} -> ${hi} MiB <= ${T.growth}x`, 44)} ${pad(fmtX(x), 8)} ${mark(x === undefined ? undefined : x <= T.growth)}`);
        }
      }
    }
  } else {
    targets.push(`  Nydus time growth ${T.growth}x across sizes: needs two sizes (BENCH_SIZES)`);
  }
  out.push('');
  out.push('Targets (issue 13; time ratios of medians, n/a where a column did not run):');
  out.push(...targets);
  out.push('');
  out.push('ready s: from the pull to the ready line (warm: ctr run only, image and blob cache local). MiB down / requests / conns: the link proxy\'s');
  out.push('registry -> node bytes, HTTP requests and TCP connections when the ready line appeared. nydusd: backend read_amount_total / read_count at that moment.');
  out.push('floor: bytes of the files the program opens (strace in a chroot of its layer; whole files, so an upper bound of what it reads) / bandwidth + its time on this host.');
  out.push(`Total bench time ${fmtS(totalMs)} s`);
  return out.join('\n') + '\n';
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  unwindOnSignals(log);
  const tStart = performance.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-bench-startup-'));
  defer(`remove ${work}`, () => cleanupTempDir(work));
  const layers = new Map<ProgramName, ProgramLayer>();
  let failure: unknown;
  let tools: Tools = { snapshotterTrace: false, nydusctlTrace: false, profilePush: false, optimize: false, profileRm: false };
  try {
    for (const tool of ['containerd', 'ctr', 'ctr-remote', 'runc', 'skopeo', 'umoci', 'docker-registry', 'strace', 'chroot']) {
      if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`Cannot run the benchmark: ${tool} is missing (scripts/setup.sh installs it)`);
    }
    tools = await probeTools();
    let stargzBin: string | undefined;
    if (has('estargz') || has('estargz-opt')) {
      try {
        stargzBin = await estargzBinary();
      } catch (e) {
        const why = `n/a (${firstLine((e as Error).message)})`;
        columnNotes.set('estargz', why);
        columnNotes.set('estargz-opt', why);
      }
    }
    for (const p of PROGRAMS) {
      const l = await buildProgramLayer(p, path.join(work, `prog-${p}`));
      layers.set(p, l);
      layerBytes.set(p, dirBytes(l.dir));
      hostRuns.set(p, await hostRun(l));
    }
    // At least the tsc layer's size, so the data of a size do not depend on BENCH_PROGRAMS.
    const progBytes = Math.max(125 * MiB, ...layerBytes.values());
    const skip = new Set<string>();
    for (const l of layers.values()) for (const f of l.hostFiles) skip.add(f);
    const tsDir = path.join(REPO_ROOT, 'node_modules', 'typescript');
    const all = collectFiles({ roots: DATA_ROOTS, uniqueInodes: true, skip: (p) => p === tsDir || skip.has(p) });
    const avail = all.reduce((s, f) => s + f.size, 0);
    log(`work dir ${work}; ${all.length} data files available (${fmtMiB(avail)} MiB) under ${DATA_ROOTS.join(', ')}`);
    const cellsCount = SIZES_MIB.length * LINKS.length * PROGRAMS.length;
    log(`plan: sizes ${SIZES_MIB.join(', ')} MiB x links ${LINKS.map((l) => l.name).join(', ')} x programs ${PROGRAMS.join(', ')} = ${cellsCount} cells; columns ${COLUMNS.join(', ')}; reps ${REPS}; estimate ~${Math.round(estimateMinutes())} min${has('estargz') || has('estargz-opt') ? ` (eStargz conversions ~${Math.round((SIZES_MIB.reduce((a, b) => a + b, 0) * PROGRAMS.length * (has('estargz-opt') ? 2 : 1)) / 5 / 60)} min of it; BENCH_ESTARGZ_LEVEL=1 shortens them)` : ''}`);
    log(`contract commands: nydus-snapshotter trace ${tools.snapshotterTrace}, nydusctl trace ${tools.nydusctlTrace}, nydusify profile push ${tools.profilePush}, nydusify optimize ${tools.optimize}`);
    const reg = await startRegistry({ dir: path.join(work, 'registry') });
    defer('stop the registry', () => reg.stop());
    const proxy = await startLinkProxy(reg.host, LINKS[0] as LinkProfile);
    defer('stop the link proxy', () => proxy.stop());
    let conv: StartedContainerd | undefined;
    if (stargzBin) {
      const cv = await startContainerd({ dir: path.join(work, 'convert-containerd') });
      defer('stop the conversion containerd', () => cv.stop());
      conv = cv;
    }
    for (const size of SIZES_MIB) {
      await buildImages(size, all, layers, progBytes, work, reg.host, conv);
      for (const prog of PROGRAMS) await measure(size, prog, layers.get(prog) as ProgramLayer, work, reg.host, proxy, stargzBin, tools);
    }
  } catch (e) {
    failure = e;
  } finally {
    await unwindTo(0);
  }
  if (layers.size > 0) process.stdout.write(report(performance.now() - tStart, tools, layers));
  if (failure !== undefined) throw failure;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:startup failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
