/**
 * bench:container — HelloBench-style container start: pull + create + run until the container
 * prints its ready line, for the same image as OCI (containerd's overlayfs snapshotter, full pull
 * and unpack) and as Nydus (bin/nydus-snapshotter, lazy), from nothing local.
 *
 * Images of about 100 MiB, 500 MiB and 2 GiB are built like bench:coldstart's: real files of
 * /usr/lib and /usr/share hard-linked into three layer directories, plus a busybox-static layer
 * (/bin/busybox, sh, cat, xargs, wc) at the bottom and an application layer on top with
 * /app/start.sh (the image's command) and /app/startup.list (the start-up set: the same files,
 * about 5 MiB, at every size, NUL-separated). start.sh reads the start-up set
 * (`xargs -0 -P4 -n32 cat | wc -c`, as bench:coldstart reads it) and prints `READY <bytes>`.
 * The OCI image (gzip layers) is pushed to a local docker-registry with skopeo and converted
 * there by bin/nydusify with the start-up list (and busybox, start.sh, the list) as
 * `--prefetch-patterns`.
 *
 * Every measured run starts from a fresh containerd (config and root in a new temporary
 * directory: empty content store and snapshot roots), for Nydus a fresh bin/nydus-snapshotter
 * root (no nydusd, empty blob cache), and dropped page caches. The clock runs from the pull to the
 * moment `READY` appears on `ctr run`'s output:
 *  - OCI:   `ctr images pull --plain-http` (overlayfs) + `ctr run --rm`;
 *  - Nydus: `ctr-remote image rpull --plain-http --snapshotter nydus` + `ctr run --rm --snapshotter
 *    nydus`, with two nydusd configs given to the snapshotter as `--nydusd-config` templates:
 *      fusedev — the snapshotter's defaults (whole file system over FUSE, prefetch of the
 *                image's start-up list from its prefetch table: 8 threads, 4 MiB requests);
 *      erofs   — `fs_driver: "erofs"` (the kernel's EROFS serves the bootstrap, nydusd the blob
 *                data on demand) with fs_prefetch of the bootstrap's prefetch table (8 threads,
 *                4 MiB merging).
 *    The shared nydusd is started on demand by the snapshotter, so its start is inside the time.
 *
 * Bytes and requests come from the registry's access log (every request and response body size,
 * manifests included); for Nydus, nydusd's backend metrics (from its API socket under the
 * snapshotter root, read when READY appears) are printed beside them.
 *
 * Everything started (registry, containerd, snapshotter, nydusd) is stopped by its handle, and
 * every mount and loop device it made is removed, also on failure or Ctrl-C.
 *
 * OCI runs once per image; each Nydus path BENCH_REPS times (default 3), the median reported.
 *
 * Usage: npm run bench:container      (BENCH_SIZES=100,500,2048 in MiB to change the sizes)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_NYDUSD_TEMPLATE } from '../src/snapshotter/nydusd-config.js';
import { cleanupTempDir, run, runCli } from '../test/helpers/mounts.js';
import { buildOciImage, busyboxRootfs, pushImage } from '../test/helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../test/helpers/registry.js';
import {
  mountsUnder, startContainerd, startNydusSnapshotter, stopNydusd,
  type StartedContainerd, type StartedSnapshotter,
} from '../test/helpers/containerd.js';
import { cleanupMark, defer, fsTypesUnder, manifestOf, nydusdBackendMetrics, runUntilReady, unwindOnSignals, unwindTo } from './bench-run.js';
import { FLAT_GROWTH, MiB, collectFiles, dropCaches, linkIntoLayers, fmtMiB, fmtS, launcherMode, planImage, type SrcFile } from './bench-images.js';

const SIZES_MIB = (process.env['BENCH_SIZES'] ?? '100,500,2048').split(',').map(Number);
const LAYERS = 3;
/** Runs of each Nydus path per image (the median is reported). */
const NYDUS_REPS = Math.max(1, Number(process.env['BENCH_REPS'] ?? '3'));
const APPLETS = ['sh', 'cat', 'xargs', 'wc', 'echo'];
const START_SH = '#!/bin/sh\nn=$(xargs -0 -P4 -n32 cat < /app/startup.list | wc -c)\necho "READY $n"\n';
/** Targets of the issue. */
const TARGET_SPEEDUP = 5;
const TARGET_SPEEDUP_AT_MIB = 2048;

const log = (s: string): void => { process.stderr.write(`[container] ${s}\n`); };

// ---------------------------------------------------------------------------------------------
// Measuring

/** Requests and response bytes in the registry's access log (combined format) after byte `from`. */
function registryTraffic(logFile: string, from: number): { requests: number; bytes: number } {
  const text = fs.readFileSync(logFile).subarray(from).toString('utf8');
  let requests = 0;
  let bytes = 0;
  for (const m of text.matchAll(/"[A-Z]+ \S+ HTTP\/[\d.]+" \d{3} (\d+) /g)) {
    requests++;
    bytes += Number(m[1]);
  }
  return { requests, bytes };
}

/** The path a cold start takes. */
type PathName = 'OCI' | 'Nydus fusedev' | 'Nydus erofs';
const PATHS: readonly PathName[] = ['OCI', 'Nydus fusedev', 'Nydus erofs'];

/** The erofs variant's template: the snapshotter's defaults plus the kernel EROFS driver and prefetch. */
const EROFS_TEMPLATE = {
  ...DEFAULT_NYDUSD_TEMPLATE,
  fs_driver: 'erofs',
  fs_prefetch: { enable: true, threads_count: 8, merging_size: 4 << 20, bandwidth_rate: 0, prefetch_all: false },
};

interface RunResult {
  totalMs: number; pullMs: number; runMs: number; readBytes: number;
  /** From the registry's access log. */
  bytes: number; requests: number;
  /** nydusd backend metrics at READY (Nydus only). */
  nydusd?: { bytes: number; reads: number };
  /** How long the snapshotter's on-demand nydusd took from its exec to answering its API (Nydus only). */
  nydusdStartMs?: number;
  /** File system type of the image mount at READY (Nydus only). */
  imageFs?: string;
}

/**
 * Time from the exec of process `pid` (its start time in /proc, clock ticks since boot, assumed
 * 100 per second) to `readyLine`'s timestamp in the snapshotter's log (`<ISO time> INFO  …`).
 */
function startDuration(pid: number, log: string, readyLine: RegExp): number | undefined {
  const m = new RegExp(`^(\\S+) INFO +${readyLine.source}`, 'm').exec(log);
  if (!m?.[1]) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const startedWall = Date.now() - (uptime - ticks / 100) * 1000;
    return Date.parse(m[1]) - startedWall;
  } catch {
    return undefined;
  }
}

/**
 * The state dirs (`nydusd-erofs-*`: bootstrap link, FUSE blob files) of kernel EROFS mounts under
 * `dir`: the directory of the mount's source (file-backed), or of its loop device's backing file.
 */
function erofsStateDirs(dir: string): string[] {
  const out: string[] = [];
  const real = fs.realpathSync(dir);
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    const mp = f[4];
    if (sep < 0 || mp === undefined || f[sep + 1] !== 'erofs' || !(mp === real || mp.startsWith(`${real}/`))) continue;
    const source = f[sep + 2] ?? '';
    const dev = /^\/dev\/(loop\d+)$/.exec(source);
    if (!dev) {
      if (/\/nydusd-erofs-[^/]+\/bootstrap$/.test(source)) out.push(path.dirname(source));
      continue;
    }
    try {
      const backing = fs.readFileSync(`/sys/block/${dev[1]}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
      out.push(path.dirname(backing));
    } catch { /* detached meanwhile */ }
  }
  return out;
}

interface RunContext { work: string; reg: StartedRegistry; regLog: string; ref: string; startupBytes: number; erofsTemplate: string }

/** One cold start of `which` from nothing local; everything it starts is stopped before it returns. */
async function coldStart(which: PathName, c: RunContext): Promise<RunResult> {
  const mark = cleanupMark();
  const dir = fs.mkdtempSync(path.join(c.work, 'run-'));
  const sroot = path.join(dir, 'snapshotter');
  const ssock = path.join(dir, 'snapshotter.sock');
  const stateDirs = new Set<string>();
  const nydus = which !== 'OCI';
  defer(`remove ${dir}`, async () => {
    for (const s of stateDirs) await cleanupTempDir(s);
    await cleanupTempDir(dir);
  });
  try {
    let sn: StartedSnapshotter | undefined;
    if (nydus) {
      const args = ['--plain-http'];
      if (which === 'Nydus erofs') args.push('--nydusd-config', c.erofsTemplate);
      sn = await startNydusSnapshotter({ root: sroot, address: ssock, args });
      const started = sn;
      defer('stop the snapshotter and its nydusd', async () => {
        await started.stop();
        await stopNydusd(sroot);
      });
    }
    const cd = await startContainerd({ dir: path.join(dir, 'containerd'), snapshotters: nydus ? { nydus: ssock } : {}, cleanupDirs: nydus ? [sroot] : [] });
    defer('stop containerd', () => cd.stop());
    // Runs first at unwinding: note the erofs mounts' state dirs before anything is unmounted.
    if (nydus) defer('find erofs state dirs', async () => { for (const s of erofsStateDirs(sroot)) stateDirs.add(s); });
    const snap = nydus ? ['--snapshotter', 'nydus'] : [];
    await dropCaches();
    const logFrom = fs.statSync(c.regLog).size;
    const t0 = performance.now();
    const pull = nydus
      ? await cd.ctrRemote(['image', 'rpull', '--plain-http', ...snap, c.ref], { timeoutMs: 30 * 60_000 })
      : await cd.ctr(['images', 'pull', '--plain-http', c.ref], { timeoutMs: 30 * 60_000 });
    if (pull.code !== 0) throw new Error(`Cannot pull ${c.ref} (${which}): ${pull.stderr}`);
    const pullMs = performance.now() - t0;
    let metrics: RunResult['nydusd'];
    let nydusdStartMs: number | undefined;
    let imageFs: string | undefined;
    const atReady = async (): Promise<void> => {
      if (!sn) return;
      imageFs = fsTypesUnder(path.join(sroot, 'mnt')).join('+');
      for (const s of erofsStateDirs(sroot)) stateDirs.add(s);
      const pid = sn.nydusdPid();
      if (pid !== undefined) nydusdStartMs = startDuration(pid, sn.log(), /nydusd started/);
      try {
        metrics = await nydusdBackendMetrics(sn.nydusdSocket);
      } catch (e) {
        log(`${which}: nydusd metrics not read: ${(e as Error).message}`);
      }
    };
    const id = `bench-${process.pid}`;
    const { readyAt, match } = await runUntilReady(cd, ['run', '--rm', '--runc-root', cd.runcRoot, ...snap, c.ref, id], t0, /^READY (\d+)$/m, atReady);
    const readBytes = Number(match[1]);
    const wantFs = which === 'Nydus erofs' ? /^erofs$/ : which === 'Nydus fusedev' ? /^fuse/ : /^$/;
    if (!wantFs.test(imageFs ?? '')) throw new Error(`Cannot count the ${which} run: the image was mounted as "${imageFs ?? ''}"`);
    if (readBytes !== c.startupBytes) throw new Error(`Cannot count the ${which} run: the container read ${readBytes} bytes, the start-up set has ${c.startupBytes}`);
    // The removed container's snapshot reaches the snapshotter (and nydusd unmounts) at a collection.
    await cd.gc();
    await new Promise((r) => setTimeout(r, 200));
    const traffic = registryTraffic(c.regLog, logFrom);
    if (sn) {
      const end = Date.now() + 10_000;
      while (mountsUnder([path.join(sroot, 'mnt')]).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    }
    return {
      totalMs: readyAt, pullMs, runMs: readyAt - pullMs, readBytes, ...traffic,
      ...(metrics ? { nydusd: metrics } : {}),
      ...(nydusdStartMs !== undefined ? { nydusdStartMs } : {}),
      ...(imageFs !== undefined ? { imageFs } : {}),
    };
  } finally {
    await unwindTo(mark);
  }
}

// ---------------------------------------------------------------------------------------------

interface Row {
  sizeMiB: number; files: number; imageBytes: number; startupFiles: number; startupBytes: number;
  ociLayerBytes: number; nydusBlobBytes: number; pushMs: number; convertMs: number;
  runs: Record<PathName, RunResult>;
}

async function buildAndPush(all: readonly SrcFile[], sizeMiB: number, work: string, reg: StartedRegistry, regLog: string, erofsTemplate: string): Promise<Row> {
  const planned = planImage(all, sizeMiB);
  // Absolute paths inside the container.
  const plan = { ...planned, startup: planned.startup.map((f) => `/${f}`) };
  if (plan.total < sizeMiB * MiB * 0.95) log(`only ${fmtMiB(plan.total)} MiB of files available for ${sizeMiB} MiB`);
  const idir = path.join(work, `img-${sizeMiB}`);
  log(`${sizeMiB} MiB: ${plan.picked.length} files, ${fmtMiB(plan.total)} MiB; start-up set ${plan.startup.length} files, ${fmtMiB(plan.startupBytes)} MiB; building layers`);
  const base = busyboxRootfs(path.join(idir, 'base'), APPLETS);
  const layerDirs: string[] = [];
  for (let i = 0; i < LAYERS; i++) layerDirs.push(path.join(idir, `layer${i}`));
  linkIntoLayers(plan.picked, layerDirs);
  const app = path.join(idir, 'app');
  fs.mkdirSync(path.join(app, 'app'), { recursive: true });
  fs.writeFileSync(path.join(app, 'app', 'start.sh'), START_SH, { mode: 0o755 });
  fs.writeFileSync(path.join(app, 'app', 'startup.list'), plan.startup.join('\0'));
  const img = await buildOciImage({ dir: path.join(idir, 'build'), layers: [base, ...layerDirs, app], name: 'img', cmd: ['/app/start.sh'] });
  const repo = `src/img${sizeMiB}`;
  const t0 = performance.now();
  await pushImage(img.ref, `${reg.host}/${repo}:1`, { tlsVerify: false });
  const pushMs = performance.now() - t0;
  fs.rmSync(idir, { recursive: true, force: true });
  log(`${sizeMiB} MiB: pushed in ${fmtS(pushMs)} s; converting`);
  const nrepo = `nydus/img${sizeMiB}`;
  const patterns = ['/bin/busybox', '/app/start.sh', '/app/startup.list', ...plan.startup].join('\n') + '\n';
  const t1 = performance.now();
  const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/${repo}:1`, '--target', `${reg.host}/${nrepo}:1`, '--work-dir', path.join(work, 'conv'), '--prefetch-patterns'], { input: patterns, timeoutMs: 60 * 60_000 });
  if (conv.code !== 0) throw new Error(`Cannot convert ${repo}: nydusify exited ${conv.code}: ${conv.stderr}`);
  const convertMs = performance.now() - t1;
  fs.rmSync(path.join(work, 'conv'), { recursive: true, force: true });
  const om = await manifestOf(reg.host, repo);
  const nm = await manifestOf(reg.host, nrepo);
  // OCI runs once (tens of seconds); each Nydus path NYDUS_REPS times, the paths taking turns,
  // and the run with the median READY time is reported.
  const tries = new Map<PathName, RunResult[]>();
  for (let rep = 0; rep < NYDUS_REPS; rep++) {
    for (const p of PATHS) {
      if (p === 'OCI' && rep > 0) continue;
      const ref = `${reg.host}/${p === 'OCI' ? repo : nrepo}:1`;
      const r = await coldStart(p, { work, reg, regLog, ref, startupBytes: plan.startupBytes, erofsTemplate });
      log(`${sizeMiB} MiB ${p}: READY after ${fmtS(r.totalMs)} s (pull ${fmtS(r.pullMs)} + run ${fmtS(r.runMs)}), ${fmtMiB(r.bytes)} MiB in ${r.requests} requests${r.imageFs ? `; image mounted as ${r.imageFs}` : ''}`);
      tries.set(p, [...(tries.get(p) ?? []), r]);
    }
  }
  const runs = {} as Record<PathName, RunResult>;
  for (const p of PATHS) {
    const sorted = [...(tries.get(p) ?? [])].sort((a, b) => a.totalMs - b.totalMs);
    runs[p] = sorted[Math.floor(sorted.length / 2)] as RunResult;
  }
  return {
    sizeMiB, files: plan.picked.length, imageBytes: plan.total, startupFiles: plan.startup.length, startupBytes: plan.startupBytes,
    ociLayerBytes: om.layers.reduce((s, l) => s + l.size, 0),
    nydusBlobBytes: nm.layers.slice(0, -1).reduce((s, l) => s + l.size, 0),
    pushMs, convertMs, runs,
  };
}

function report(rows: readonly Row[], totalMs: number): string {
  const out: string[] = [];
  const pad = (s: string, n: number): string => s.padEnd(n);
  out.push('');
  out.push(`Container start, HelloBench-style: from nothing local (fresh containerd and snapshotter roots, page caches dropped) to the container's READY line`);
  out.push(`(${os.cpus().length} CPUs; docker-registry on loopback; the container reads its start-up set with busybox xargs -0 -P4 cat; Nydus: median of ${NYDUS_REPS} runs; tools run from ${launcherMode()})`);
  out.push('');
  out.push('image      files  image MiB  start-up (files/MiB)  OCI gzip MiB  Nydus blobs MiB  skopeo push s  nydusify convert s');
  for (const r of rows) {
    out.push(`${pad(`${r.sizeMiB} MiB`, 10)} ${pad(String(r.files), 6)} ${pad(fmtMiB(r.imageBytes), 10)} ${pad(`${r.startupFiles} / ${fmtMiB(r.startupBytes)}`, 21)} ${pad(fmtMiB(r.ociLayerBytes), 13)} ${pad(fmtMiB(r.nydusBlobBytes), 16)} ${pad(fmtS(r.pushMs), 14)} ${fmtS(r.convertMs)}`);
  }
  out.push('');
  out.push('image      path           READY s  pull s  run s  (nydusd start s)  MiB fetched  requests  nydusd backend MiB/reads  OCI/Nydus time  OCI/Nydus bytes');
  for (const r of rows) {
    const oci = r.runs.OCI;
    for (const p of PATHS) {
      const x = r.runs[p];
      const nd = x.nydusd ? `${fmtMiB(x.nydusd.bytes)} / ${x.nydusd.reads}` : p === 'OCI' ? '' : '?';
      const ratios = p === 'OCI' ? '' : `${pad(`${(oci.totalMs / x.totalMs).toFixed(1)}x`, 15)} ${(oci.bytes / x.bytes).toFixed(1)}x`;
      const ns = x.nydusdStartMs !== undefined ? fmtS(x.nydusdStartMs) : p === 'OCI' ? '' : '?';
      out.push(`${pad(p === 'OCI' ? `${r.sizeMiB} MiB` : '', 10)} ${pad(p, 14)} ${pad(fmtS(x.totalMs), 8)} ${pad(fmtS(x.pullMs), 7)} ${pad(fmtS(x.runMs), 6)} ${pad(ns, 17)} ${pad(fmtMiB(x.bytes), 12)} ${pad(String(x.requests), 9)} ${pad(nd, 25)} ${ratios}`);
    }
  }
  const first = rows[0];
  const last = rows[rows.length - 1];
  out.push('');
  if (first && last && first !== last) {
    out.push(`Growth ${first.sizeMiB} MiB -> ${last.sizeMiB} MiB (image x${(last.imageBytes / first.imageBytes).toFixed(1)}, start-up set x${(last.startupBytes / first.startupBytes).toFixed(1)}):`);
    for (const p of PATHS) {
      out.push(`  ${pad(p, 14)} time x${(last.runs[p].totalMs / first.runs[p].totalMs).toFixed(1)}, bytes x${(last.runs[p].bytes / first.runs[p].bytes).toFixed(1)}`);
    }
  } else {
    out.push('Growth across sizes: only one size measured (BENCH_SIZES).');
  }
  out.push('');
  out.push('Targets:');
  const big = rows.find((r) => r.sizeMiB === TARGET_SPEEDUP_AT_MIB);
  const speedups = (r: Row): string => PATHS.filter((p) => p !== 'OCI').map((p) => {
    const s = r.runs.OCI.totalMs / r.runs[p].totalMs;
    return `${p} ${s.toFixed(1)}x (${s >= TARGET_SPEEDUP ? 'met' : 'NOT met'})`;
  }).join(', ');
  if (big) out.push(`  Nydus >= ${TARGET_SPEEDUP}x faster than OCI at ${TARGET_SPEEDUP_AT_MIB} MiB: ${speedups(big)}`);
  else out.push(`  Nydus >= ${TARGET_SPEEDUP}x faster than OCI at ${TARGET_SPEEDUP_AT_MIB} MiB: not measured (largest size ${last?.sizeMiB ?? '-'} MiB: ${last ? speedups(last) : '-'})`);
  if (first && last && first !== last) {
    const flat = PATHS.filter((p) => p !== 'OCI').map((p) => {
      const g = last.runs[p].totalMs / first.runs[p].totalMs;
      return `${p} x${g.toFixed(2)} (${g <= FLAT_GROWTH ? 'met' : 'NOT met'})`;
    }).join(', ');
    out.push(`  Nydus flat across sizes with a fixed start-up set (READY time grows <= x${FLAT_GROWTH} from ${first.sizeMiB} to ${last.sizeMiB} MiB): ${flat}`);
  } else {
    out.push(`  Nydus nearly flat across sizes: needs at least two sizes`);
  }
  out.push('');
  out.push('MiB fetched / requests: every request in the registry access log during the run (manifests, config, layers; for Nydus the bootstrap layer and nydusd\'s ranged blob reads).');
  out.push('run: ctr run until READY (for Nydus this includes the start of the shared nydusd, shown in brackets, and the image mount).');
  out.push('nydusd backend: read_amount_total / read_count of the image mount, read when READY appeared (prefetch may still be running).');
  out.push(`Total bench time ${fmtS(totalMs)} s`);
  return out.join('\n') + '\n';
}

async function main(): Promise<void> {
  unwindOnSignals(log);
  const tStart = performance.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-bench-container-'));
  defer(`remove ${work}`, () => cleanupTempDir(work));
  const rows: Row[] = [];
  try {
    log(`work dir ${work}; sizes ${SIZES_MIB.join(', ')} MiB; tools from ${launcherMode()}`);
    for (const tool of ['containerd', 'ctr', 'ctr-remote', 'runc', 'skopeo', 'umoci', 'docker-registry']) {
      if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`Cannot run the benchmark: ${tool} is missing (scripts/setup.sh installs it)`);
    }
    const all = collectFiles();
    log(`${all.length} candidate files from /usr/lib and /usr/share (${fmtMiB(all.reduce((s, f) => s + f.size, 0))} MiB)`);
    const erofsTemplate = path.join(work, 'nydusd-erofs.json');
    fs.writeFileSync(erofsTemplate, JSON.stringify(EROFS_TEMPLATE, null, 2));
    const regDir = path.join(work, 'registry');
    const reg = await startRegistry({ dir: regDir });
    defer('stop the registry', () => reg.stop());
    for (const sizeMiB of SIZES_MIB) rows.push(await buildAndPush(all, sizeMiB, work, reg, path.join(regDir, 'registry.log'), erofsTemplate));
  } finally {
    await unwindTo(0);
  }
  process.stdout.write(report(rows, performance.now() - tStart));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:container failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
