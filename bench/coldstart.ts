/**
 * bench:coldstart — container cold start, Nydus (lazy, registry backend) versus OCI (pull + unpack
 * every layer), from nothing local to "the start-up set has been read".
 *
 * Images of about 100 MiB, 500 MiB and 2 GiB are built from real files of this machine
 * (/usr/lib, /usr/share, hard-linked into three layer directories), pushed as OCI (gzip layers) to
 * a local docker-registry and converted there with bin/nydusify. The start-up set is a fixed,
 * deterministic choice of files, about 5 MiB, the same files at every size: Nydus's growth from
 * the smallest to the largest image is judged against FLAT_GROWTH (x1.3) on this fixed workload.
 *
 *  - Nydus: fetch manifest + bootstrap layer (RegistryClient, unpacked as it arrives) while
 *    nydusd starts, then mount it through nydusd's API (registry backend, empty blob cache) +
 *    read the start-up set. The image is converted with the start-up list as
 *    `--prefetch-patterns` (what a user does with a recorded start-up trace: those files' data is
 *    placed together, in that order, at the end of each blob) and runs two ways:
 *      fusedev — the whole file system over FUSE, nydusd's defaults (no prefetch, 1 MiB amplify);
 *      erofs   — fs_driver "erofs": the kernel's EROFS serves the bootstrap, nydusd the blob data
 *                on demand, with fs_prefetch of the bootstrap's prefetch table (8 threads, 4 MiB).
 *  - OCI:   `skopeo copy docker://… oci:DIR` + `tar -xzf` of every layer in order + read the
 *    start-up set from the unpacked rootfs.
 *
 * Both run directly against the registry and through nginx with `limit_rate 50m` (per response,
 * slice cache mode; every cold start gets a fresh nginx with an empty cache). Page caches are dropped before every cold start. Reads: `xargs -P4 cat`.
 *
 * Each Nydus cell is the median of BENCH_REPS runs (default 3); OCI runs once.
 *
 * Usage: npm run bench:coldstart      (BENCH_SIZES=100,500,2048 in MiB to change the sizes)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { run, runOk, runCli, cleanupTempDir, isMounted, umount } from '../test/helpers/mounts.js';
import { buildOciImage, pushImage } from '../test/helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../test/helpers/registry.js';
import { startNginxProxy, type NginxProxy } from '../test/helpers/nginx.js';
import { apiMount, nydusdConfig, startNydusd, type NydusdHandle } from '../test/helpers/nydusd.js';
import { RegistryClient } from '../src/registry/registry-client.js';
import { FLAT_GROWTH, MiB, collectFiles, dropCaches, elapsed, fmtMiB, fmtS, launcherMode, planImage } from './bench-images.js';

const SIZES_MIB = (process.env['BENCH_SIZES'] ?? '100,500,2048').split(',').map(Number);
const LAYERS = 3;
/** Runs of each Nydus variant per cell (the median is reported). */
const NYDUS_REPS = Math.max(1, Number(process.env['BENCH_REPS'] ?? '3'));

const log = (s: string): void => { process.stderr.write(`[coldstart] ${s}\n`); };

/** Reads every start-up file under `root` with `xargs -P4 cat`; returns the bytes read. */
async function readStartup(root: string, files: string[]): Promise<number> {
  const list = files.map((f) => path.join(root, f)).join('\0');
  const r = await run('sh', ['-c', 'xargs -0 -P4 -n32 cat | wc -c'], { input: list, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`reading the start-up set under ${root} failed: ${r.stderr}`);
  return Number(r.stdout.toString().trim());
}

/** Number of access-log lines of nginx since `from` characters. */
function logLines(ngx: NginxProxy | undefined, from: number): { count: number; bytes: number } {
  if (!ngx) return { count: 0, bytes: 0 };
  const lines = ngx.accessLog().slice(from).split('\n').filter((l) => l.trim() !== '');
  let bytes = 0;
  for (const l of lines) {
    const m = /" \d{3} (\d+) /.exec(l);
    if (m) bytes += Number(m[1]);
  }
  return { count: lines.length, bytes };
}

interface Manifest { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number; annotations?: Record<string, string> }> }

interface PathResult { totalMs: number; phases: string; bytes: number; requests: number; readBytes: number }

async function ociColdStart(host: string, repo: string, dir: string, startup: string[], ngx: NginxProxy | undefined): Promise<PathResult> {
  const layout = path.join(dir, 'oci');
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  const logFrom = ngx ? ngx.accessLog().length : 0;
  const t0 = performance.now();
  const [, copyMs] = await elapsed(() => runOk('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${host}/${repo}:1`, `oci:${layout}:x`]));
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (d: string): string => path.join(layout, 'blobs', ...d.split(':'));
  const m = JSON.parse(fs.readFileSync(blob((index.manifests[0] as { digest: string }).digest), 'utf8')) as Manifest;
  const [, unpackMs] = await elapsed(async () => {
    for (const l of m.layers) await runOk('tar', ['-xzf', blob(l.digest), '-C', rootfs]);
  });
  const [readBytes, readMs] = await elapsed(() => readStartup(rootfs, startup));
  const totalMs = performance.now() - t0;
  const layerBytes = m.layers.reduce((s, l) => s + l.size, 0) + m.config.size;
  const nl = logLines(ngx, logFrom);
  return {
    totalMs, readBytes,
    phases: `copy ${fmtS(copyMs)} + unpack ${fmtS(unpackMs)} + read ${fmtS(readMs)}`,
    bytes: layerBytes,
    // Without nginx: manifest + config + one GET per layer (skopeo's /v2/ ping and HEADs not counted).
    requests: ngx ? nl.count : m.layers.length + 2,
  };
}

/** How nydusd runs in a Nydus cold start. */
interface NydusVariant { name: 'fusedev' | 'erofs'; prefetch: boolean; extra: Record<string, unknown> }

const VARIANTS: readonly NydusVariant[] = [
  { name: 'fusedev', prefetch: false, extra: {} },
  { name: 'erofs', prefetch: true, extra: { fs_driver: 'erofs', fs_prefetch: { enable: true, threads_count: 8, merging_size: 4 << 20, bandwidth_rate: 0, prefetch_all: false } } },
];

/** Download the image's bootstrap layer (the last one) and unpack it into `dir` as it arrives; returns its size. */
async function fetchBootstrapLayer(host: string, repo: string, dir: string): Promise<number> {
  const client = new RegistryClient(host, { plainHttp: true });
  try {
    const m = JSON.parse(Buffer.from((await client.getManifest(repo, '1')).data).toString()) as Manifest;
    const last = m.layers[m.layers.length - 1] as { digest: string; size: number };
    const tar = spawn('tar', ['-xzf', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    tar.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<number | null>((r) => tar.once('close', (code) => r(code)));
    try {
      await pipeline(Readable.from(client.blobStream(repo, last.digest)), tar.stdin);
    } finally {
      const code = await exited;
      if (code !== 0) throw new Error(`unpacking the bootstrap layer of ${repo} failed (tar exited ${code}): ${err}`);
    }
    return last.size;
  } finally {
    await client.close();
  }
}

/**
 * One Nydus cold start: nydusd starts while the bootstrap layer downloads (as nydus-snapshotter
 * does on a node's first image), then mounts it through its API; then the start-up set is read.
 */
async function nydusColdStart(host: string, repo: string, dir: string, startup: string[], ngx: NginxProxy | undefined, v: NydusVariant): Promise<PathResult> {
  const bx = path.join(dir, 'bx');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(bx, { recursive: true });
  const logFrom = ngx ? ngx.accessLog().length : 0;
  const t0 = performance.now();
  let d: NydusdHandle | undefined;
  try {
    const [boot, daemon] = await Promise.allSettled([
      elapsed(() => fetchBootstrapLayer(host, repo, bx)),
      elapsed(() => startNydusd({ dir })),
    ]);
    if (daemon.status === 'fulfilled') d = daemon.value[0];
    if (boot.status === 'rejected') throw boot.reason;
    if (daemon.status === 'rejected') throw daemon.reason;
    const [bootLayerSize, fetchMs] = boot.value;
    const startMs = daemon.value[1];
    const handle = d as NydusdHandle;
    const config = nydusdConfig({ backend: { type: 'registry', scheme: 'http', host, repo, timeout: 30, retry_limit: 2 }, workDir: path.join(dir, 'cache'), prefetch: v.prefetch, extra: v.extra });
    const [mounted, mountMs] = await elapsed(() => apiMount(handle, mnt, path.join(bx, 'image/image.boot'), config));
    if (mounted.status !== 204) throw new Error(`nydusd could not mount ${repo}: ${mounted.status} ${JSON.stringify(mounted.body)}`);
    const [readBytes, readMs] = await elapsed(() => readStartup(mnt, startup));
    const totalMs = performance.now() - t0;
    const b = (await handle.api('GET', '/api/v1/metrics/backend')).body as { read_amount_total: number; read_count: number; read_errors: number };
    if (b.read_errors !== 0) throw new Error(`nydusd had ${b.read_errors} backend read errors`);
    const nl = logLines(ngx, logFrom);
    return {
      totalMs, readBytes,
      phases: `boot ${fmtS(fetchMs)} | nydusd ${fmtS(startMs)} + mount ${fmtS(mountMs)} + read ${fmtS(readMs)}`,
      bytes: bootLayerSize + b.read_amount_total,
      requests: ngx ? nl.count : b.read_count + 2,
    };
  } finally {
    await d?.stop();
    if (isMounted(mnt)) await umount(mnt);
  }
}

interface Row {
  sizeMiB: number; files: number; imageBytes: number; startupFiles: number; startupBytes: number;
  ociLayerBytes: number; nydusBlobBytes: number; convertMs: number; pushMs: number;
  runs: Record<string, { oci: PathResult; nydus: Record<NydusVariant['name'], PathResult> }>;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-bench-coldstart-'));
  let reg: StartedRegistry | undefined;
  let ngx: NginxProxy | undefined;
  const rows: Row[] = [];
  const tStart = performance.now();
  try {
    log(`work dir ${work}; sizes ${SIZES_MIB.join(', ')} MiB; tools from ${launcherMode()}`);
    const all = collectFiles();
    log(`${all.length} candidate files from /usr/lib and /usr/share (${fmtMiB(all.reduce((s, f) => s + f.size, 0))} MiB)`);
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    // Every cold start through nginx gets a proxy of its own with an empty cache: a run must not
    // find the slices an earlier run (another variant, or the same one) left in the cache.
    let proxies = 0;
    const through = async <T>(mode: 'direct' | 'nginx 50m', fn: (host: string, via: NginxProxy | undefined) => Promise<T>): Promise<T> => {
      if (mode === 'direct') return fn(reg!.host, undefined);
      const dir = path.join(work, `nginx-${proxies++}`);
      ngx = await startNginxProxy({ dir, upstream: reg!.url, slice: true, limitRate: '50m' });
      try {
        return await fn(`127.0.0.1:${ngx.port}`, ngx);
      } finally {
        await ngx.stop();
        ngx = undefined;
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
    for (const sizeMiB of SIZES_MIB) {
      const { picked, total, startup, startupBytes: sBytes } = planImage(all, sizeMiB);
      if (total < sizeMiB * MiB * 0.95) log(`only ${fmtMiB(total)} MiB of files available for ${sizeMiB} MiB`);
      const idir = path.join(work, `img-${sizeMiB}`);
      log(`${sizeMiB} MiB: ${picked.length} files, ${fmtMiB(total)} MiB; start-up set ${startup.length} files, ${fmtMiB(sBytes)} MiB; building layers`);
      const layerDirs: string[] = [];
      for (let i = 0; i < LAYERS; i++) layerDirs.push(path.join(idir, `layer${i}`));
      picked.forEach((f, k) => {
        const dst = path.join(layerDirs[Math.floor((k * LAYERS) / picked.length)] as string, f.rel);
        fs.mkdirSync(path.dirname(dst), { recursive: true });
        try { fs.linkSync(f.abs, dst); } catch { fs.copyFileSync(f.abs, dst); }
      });
      const img = await buildOciImage({ dir: path.join(idir, 'build'), layers: layerDirs, name: 'img' });
      const repo = `src/img${sizeMiB}`;
      const [, pushMs] = await elapsed(() => pushImage(img.ref, `${reg!.host}/${repo}:1`, { tlsVerify: false }));
      fs.rmSync(path.join(idir, 'build'), { recursive: true, force: true });
      for (const d of layerDirs) fs.rmSync(d, { recursive: true, force: true });
      log(`${sizeMiB} MiB: pushed in ${fmtS(pushMs)} s; converting`);
      const nrepo = `nydus/img${sizeMiB}`;
      const patterns = startup.map((f) => `/${f}`).join('\n') + '\n';
      const [conv, convertMs] = await elapsed(() => runCli('nydusify', ['convert', '--plain-http', '--source', `${reg!.host}/${repo}:1`, '--target', `${reg!.host}/${nrepo}:1`, '--work-dir', path.join(idir, 'conv'), '--prefetch-patterns'], { input: patterns }));
      if (conv.code !== 0) throw new Error(`nydusify convert failed: ${conv.stderr}`);
      fs.rmSync(path.join(idir, 'conv'), { recursive: true, force: true });
      const sizes = async (r: string): Promise<Manifest> => {
        const c = new RegistryClient(reg!.host, { plainHttp: true });
        try { return JSON.parse(Buffer.from((await c.getManifest(r, '1')).data).toString()) as Manifest; } finally { await c.close(); }
      };
      const om = await sizes(repo);
      const nm = await sizes(nrepo);
      const row: Row = {
        sizeMiB, files: picked.length, imageBytes: total, startupFiles: startup.length, startupBytes: sBytes,
        ociLayerBytes: om.layers.reduce((s, l) => s + l.size, 0),
        nydusBlobBytes: nm.layers.slice(0, -1).reduce((s, l) => s + l.size, 0),
        convertMs, pushMs, runs: {},
      };
      for (const mode of ['direct', 'nginx 50m'] as const) {
        const odir = path.join(idir, `oci-${mode === 'direct' ? 'd' : 'n'}`);
        const ndir = path.join(idir, `nydus-${mode === 'direct' ? 'd' : 'n'}`);
        fs.mkdirSync(odir, { recursive: true });
        fs.mkdirSync(ndir, { recursive: true });
        await dropCaches();
        const oci = await through(mode, (host, via) => ociColdStart(host, repo, odir, startup, via));
        fs.rmSync(odir, { recursive: true, force: true });
        const nydus = {} as Record<NydusVariant['name'], PathResult>;
        // Nydus runs take seconds and vary more than that from run to run: each is run NYDUS_REPS
        // times, the variants taking turns, and the run with the median time is reported.
        const tries = new Map<NydusVariant['name'], PathResult[]>();
        for (let rep = 0; rep < NYDUS_REPS; rep++) {
          for (const v of VARIANTS) {
            fs.mkdirSync(ndir, { recursive: true });
            await dropCaches();
            const r = await through(mode, (host, via) => nydusColdStart(host, nrepo, ndir, startup, via, v));
            fs.rmSync(ndir, { recursive: true, force: true });
            if (r.readBytes !== sBytes) throw new Error(`start-up set: expected ${sBytes} bytes, Nydus ${v.name} read ${r.readBytes}`);
            tries.set(v.name, [...(tries.get(v.name) ?? []), r]);
          }
        }
        for (const v of VARIANTS) {
          const sorted = [...(tries.get(v.name) ?? [])].sort((a, b) => a.totalMs - b.totalMs);
          nydus[v.name] = sorted[Math.floor(sorted.length / 2)] as PathResult;
          log(`${sizeMiB} MiB ${mode}: Nydus ${v.name} runs ${sorted.map((r) => fmtS(r.totalMs)).join(', ')} s`);
        }
        if (oci.readBytes !== sBytes) throw new Error(`start-up set: expected ${sBytes} bytes, OCI read ${oci.readBytes}`);
        log(`${sizeMiB} MiB ${mode}: OCI ${fmtS(oci.totalMs)} s (${oci.phases}), ${VARIANTS.map((v) => `Nydus ${v.name} ${fmtS(nydus[v.name].totalMs)} s (${nydus[v.name].phases})`).join(', ')}`);
        row.runs[mode] = { oci, nydus };
      }
      rows.push(row);
      fs.rmSync(idir, { recursive: true, force: true });
    }
  } finally {
    await ngx?.stop();
    await reg?.stop();
    await cleanupTempDir(work);
  }

  // ---- the table
  const out: string[] = [];
  const pad = (s: string, n: number): string => s.padEnd(n);
  out.push('');
  out.push(`Cold start: from nothing local to "start-up set read" (${os.cpus().length} CPUs, docker-registry on loopback; reads with xargs -P4 cat; page caches dropped before each run; Nydus: median of ${NYDUS_REPS} runs; tools run from ${launcherMode()})`);
  out.push('');
  out.push('image      files  image MiB  start-up (files/MiB)  OCI gzip MiB  Nydus blobs MiB  skopeo push s  nydusify convert s  skopeo copy (pull) s');
  for (const r of rows) {
    const copyS = r.runs['direct']?.oci.phases.match(/copy ([\d.]+)/)?.[1] ?? '?';
    out.push(`${pad(`${r.sizeMiB} MiB`, 10)} ${pad(String(r.files), 6)} ${pad(fmtMiB(r.imageBytes), 10)} ${pad(`${r.startupFiles} / ${fmtMiB(r.startupBytes)}`, 21)} ${pad(fmtMiB(r.ociLayerBytes), 13)} ${pad(fmtMiB(r.nydusBlobBytes), 16)} ${pad(fmtS(r.pushMs), 14)} ${pad(fmtS(r.convertMs), 19)} ${copyS}`);
  }
  for (const mode of ['direct', 'nginx 50m']) {
    out.push('');
    out.push(`-- ${mode === 'direct' ? 'direct to the registry' : 'through nginx (slice cache, empty for every run; limit_rate 50m per response)'}`);
    out.push('image      path           total s  phases (s)                                           MiB transferred  requests  OCI/Nydus time  OCI/Nydus bytes');
    for (const r of rows) {
      const x = r.runs[mode];
      if (!x) continue;
      out.push(`${pad(`${r.sizeMiB} MiB`, 10)} ${pad('OCI', 14)} ${pad(fmtS(x.oci.totalMs), 8)} ${pad(x.oci.phases, 52)} ${pad(fmtMiB(x.oci.bytes), 16)} ${pad(String(x.oci.requests), 9)}`);
      for (const v of VARIANTS) {
        const n = x.nydus[v.name];
        out.push(`${pad('', 10)} ${pad(`Nydus ${v.name}`, 14)} ${pad(fmtS(n.totalMs), 8)} ${pad(n.phases, 52)} ${pad(fmtMiB(n.bytes), 16)} ${pad(String(n.requests), 9)} ${pad(`${(x.oci.totalMs / n.totalMs).toFixed(1)}x`, 15)} ${(x.oci.bytes / n.bytes).toFixed(1)}x`);
      }
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first && last && first !== last) {
      const a = first.runs[mode];
      const b = last.runs[mode];
      if (a && b) {
        for (const v of VARIANTS) {
          const g = b.nydus[v.name].totalMs / a.nydus[v.name].totalMs;
          out.push(`Nydus ${v.name} growth ${first.sizeMiB} MiB -> ${last.sizeMiB} MiB (image x${(last.imageBytes / first.imageBytes).toFixed(1)}, start-up set x${(last.startupBytes / first.startupBytes).toFixed(1)}, fixed): time x${g.toFixed(2)} (<= x${FLAT_GROWTH}: ${g <= FLAT_GROWTH ? 'PASS' : 'MISS'}), bytes x${(b.nydus[v.name].bytes / a.nydus[v.name].bytes).toFixed(1)}`);
        }
        out.push(`OCI growth: time x${(b.oci.totalMs / a.oci.totalMs).toFixed(1)}`);
      }
    }
  }
  out.push('');
  out.push('Bytes: OCI = config + all gzip layers; Nydus = bootstrap layer + nydusd backend read_amount_total. Requests: direct = manifest + config/bootstrap + layer GETs (OCI) or backend read_count (Nydus); nginx = access-log lines.');
  out.push(`Total bench time ${fmtS(performance.now() - tStart)} s`);
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:coldstart failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
