/**
 * bench:read — nydusd versus the Linux EROFS kernel mount of the same image's `export --block`
 * output, in one run: warm and cold sequential throughput (1 MiB reads), a metadata walk of a
 * ≥ 50k-file image, random 4 KiB read IOPS, and the daemon's RSS with a 100k-file image mounted.
 * Page caches are dropped before every timed pass, so both sides read through their own path.
 *
 * Usage: npm run bench:read
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const IMG = join(ROOT, 'bin/nydus-image');
const work = mkdtempSync(join(tmpdir(), 'nydus-bench-read-'));
const cleanups: Array<() => void> = [];

function sh(cmd: string): string {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`Cannot run: ${cmd}\n${r.stderr}`);
  return r.stdout;
}
const dropCaches = (): void => { sh('sync; echo 3 > /proc/sys/vm/drop_caches'); };
function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;

function kernelMount(disk: string, mnt: string): void {
  mkdirSync(mnt, { recursive: true });
  const loop = sh(`losetup -f --show -r ${disk}`).trim();
  cleanups.push(() => { spawnSync('losetup', ['-d', loop]); });
  sh(`mount -t erofs -o ro ${loop} ${mnt}`);
  cleanups.push(() => { spawnSync('umount', [mnt]); });
}

async function nydusd(boot: string, blobs: string, cache: string, mnt: string, name: string): Promise<ChildProcess> {
  mkdirSync(mnt, { recursive: true });
  const cfg = join(work, `${name}.json`);
  writeFileSync(cfg, JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: blobs } }, cache: { type: 'blobcache', config: { work_dir: cache } } }, mode: 'direct', digest_validate: false, enable_xattr: true, amplify_io: 1048576 }));
  const child = spawn(join(ROOT, 'bin/nydusd'), ['--config', cfg, '--bootstrap', boot, '--mountpoint', mnt, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanups.push(() => { child.kill('SIGTERM'); spawnSync('umount', [mnt]); });
  for (let k = 0; k < 400; k++) {
    if (readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nydusd did not mount ${mnt}`);
}

async function stopNydusd(child: ChildProcess, mnt: string): Promise<void> {
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
  spawnSync('umount', [mnt]);
}

/** Random 4 KiB preads over `file` with `conc` loops for `seconds`. */
async function randomIops(file: string, seconds: number, conc: number): Promise<number> {
  const script = `
    const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(file)}, 'r'); const size = fs.fstatSync(fd).size;
    let n = 0; const end = Date.now() + ${seconds * 1000}; let seed = 12345;
    const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; };
    const loop = () => new Promise((res) => { const buf = Buffer.alloc(4096); const step = () => { if (Date.now() >= end) return res(); const off = Math.floor(rnd() * (size / 4096)) * 4096; fs.read(fd, buf, 0, 4096, off, (e) => { if (e) throw e; n++; step(); }); }; step(); });
    Promise.all(Array.from({ length: ${conc} }, loop)).then(() => console.log(n));`;
  const js = join(work, 'iops.cjs');
  writeFileSync(js, script);
  const out = sh(`UV_THREADPOOL_SIZE=${conc + 2} node ${js}`);
  return Number(out.trim()) / seconds;
}

function rssOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024;
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

try {
  console.log('preparing images…');
  // Throughput image: one 512 MiB file of real data (shared libraries of this machine).
  const tsrc = join(work, 'tsrc');
  mkdirSync(tsrc);
  sh(`(find /usr/lib -xdev -type f -size +100k 2>/dev/null | sort | xargs cat 2>/dev/null || true) | head -c ${512 << 20} > ${tsrc}/big.bin`);
  sh(`${IMG} create -B ${work}/t.boot -D ${work}/tblobs ${tsrc} && ${IMG} export --block -B ${work}/t.boot -D ${work}/tblobs -O ${work}/t.disk`);
  // Metadata image: /usr/share and /usr/include as one layer (≥ 50k files).
  sh(`tar -cf - -C / usr/share usr/include 2>/dev/null | ${IMG} create -t tar-rafs -B ${work}/m.boot -D ${work}/mblobs /dev/stdin && ${IMG} export --block -B ${work}/m.boot -D ${work}/mblobs -O ${work}/m.disk`);
  const mfiles = Number(/files (\d+)/.exec(sh(`${IMG} stat -B ${work}/m.boot`))?.[1] ?? 0);

  kernelMount(`${work}/t.disk`, `${work}/kt`);
  kernelMount(`${work}/m.disk`, `${work}/km`);
  const size = fstatSync(openSync(`${tsrc}/big.bin`, 'r')).size;
  const dd = (f: string): number => { dropCaches(); return size / 2 ** 20 / timeIt(() => sh(`dd if=${f} of=/dev/null bs=1M status=none`)); };

  // Cold: empty blob cache, blob read from the localfs backend.
  let d = await nydusd(`${work}/t.boot`, `${work}/tblobs`, `${work}/cache-cold`, `${work}/nt`, 't');
  const coldN = dd(`${work}/nt/big.bin`);
  const coldK = dd(`${work}/kt/big.bin`);
  // Warm: the blob cache now holds every chunk.
  const warmN = Math.max(dd(`${work}/nt/big.bin`), dd(`${work}/nt/big.bin`));
  const warmK = Math.max(dd(`${work}/kt/big.bin`), dd(`${work}/kt/big.bin`));
  dropCaches();
  const iopsN = await randomIops(`${work}/nt/big.bin`, 5, 4);
  dropCaches();
  const iopsK = await randomIops(`${work}/kt/big.bin`, 5, 4);
  await stopNydusd(d, `${work}/nt`);

  d = await nydusd(`${work}/m.boot`, `${work}/mblobs`, `${work}/cache-m`, `${work}/nm`, 'm');
  dropCaches();
  const walkN = timeIt(() => sh(`find ${work}/nm -ls > /dev/null`));
  dropCaches();
  const walkK = timeIt(() => sh(`find ${work}/km -ls > /dev/null`));
  await stopNydusd(d, `${work}/nm`);

  // RSS with a 100k-file image mounted and walked.
  sh(`python3 -c "
import os
r='${work}/hsrc'
for i in range(100):
    d=os.path.join(r,'d%03d'%i); os.makedirs(d)
    for j in range(1000):
        open(os.path.join(d,'f%04d'%j),'w').write('x'*(j%50))
"`);
  sh(`${IMG} create -B ${work}/h.boot -D ${work}/hblobs ${work}/hsrc`);
  d = await nydusd(`${work}/h.boot`, `${work}/hblobs`, `${work}/cache-h`, `${work}/nh`, 'h');
  const before = rssOf(d.pid as number);
  sh(`find ${work}/nh -ls > /dev/null`);
  const afterWalk = rssOf(d.pid as number);
  await stopNydusd(d, `${work}/nh`);

  console.log('');
  console.log(`image T: ${mib(size)} file; image M: ${mfiles} files; nydusd localfs backend + blobcache; page caches dropped before each pass`);
  console.log('measure                          nydusd        kernel EROFS   ratio (nydusd/kernel)');
  const row = (name: string, n: number, k: number, unit: string, better: 'higher' | 'lower'): void => {
    console.log(`${name.padEnd(32)} ${`${n.toFixed(n < 10 ? 2 : 0)} ${unit}`.padEnd(13)} ${`${k.toFixed(k < 10 ? 2 : 0)} ${unit}`.padEnd(14)} ${(n / k).toFixed(3)} (${better} is better)`);
  };
  row('warm sequential read (1 MiB)', warmN, warmK, 'MiB/s', 'higher');
  row('cold sequential read (1 MiB)', coldN, coldK, 'MiB/s', 'higher');
  row('random 4 KiB reads, 4 threads', iopsN, iopsK, 'IOPS', 'higher');
  row(`metadata walk (find -ls)`, walkN, walkK, 's', 'lower');
  console.log(`targets: warm sequential >= 0.5 of the kernel's: ${warmN / warmK >= 0.5 ? 'met' : 'NOT met'}; metadata walk <= 3x the kernel's time: ${walkN / walkK <= 3 ? 'met' : 'NOT met'}`);
  console.log(`nydusd RSS with a 100k-file image mounted: ${mib(before.rss)} after mount, ${mib(afterWalk.rss)} after walking every file (peak ${mib(afterWalk.hwm)}; target <= 150 MiB: ${afterWalk.hwm <= 150 * 2 ** 20 ? 'met' : 'NOT met'})`);
} finally {
  for (const c of cleanups.reverse()) {
    try { c(); } catch { /* best effort */ }
  }
  if (!existsSync('/proc/mounts') || !readFileSync('/proc/mounts', 'utf8').includes(work)) rmSync(work, { recursive: true, force: true });
}
