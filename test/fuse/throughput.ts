/**
 * Throughput check (not a test): mounts an in-memory file and reads it with dd through the mount.
 *
 *   UV_THREADPOOL_SIZE=12 node --import tsx test/fuse/throughput.ts [--size-mb 64] [--workers 4]
 *     [--ra-kb 1024] [--runs 4] [--parallel 4] [--direct] [--keep-cache] [--async-writev]
 *
 * Without --keep-cache every open drops the file's page cache, so each dd run goes through FUSE.
 * --async-writev replaces the session's synchronous writev with fs.writev (threadpool), to compare.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { mountFuse } from '../../src/fuse/session.js';
import type { OpenResult } from '../../src/fuse/file-system.js';
import { MemoryFs, patternBytes } from './memory-fs.js';

const { values: a } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '64' },
    workers: { type: 'string', default: '4' },
    'ra-kb': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '4' },
    parallel: { type: 'string', default: '4' },
    direct: { type: 'boolean', default: false },
    'keep-cache': { type: 'boolean', default: false },
    'async-writev': { type: 'boolean', default: false },
  },
});
const sizeMb = Number(a['size-mb']);
const workers = Number(a.workers);
const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

if (a['async-writev']) {
  // Patch the CommonJS fs object, then refresh the ES module view the session imported.
  const cjsFs = createRequire(import.meta.url)('node:fs') as typeof fs;
  cjsFs.writevSync = (fd, bufs) => {
    fs.writev(fd, bufs as NodeJS.ArrayBufferView[], (err) => {
      if (err && err.code !== 'ENOENT' && err.code !== 'ENODEV') process.stderr.write(`writev: ${err.message}\n`);
    });
    return 0;
  };
  syncBuiltinESMExports();
}

function dd(file: string): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    c.once('close', (code) => {
      // dd's own timing (excludes process start-up); wall clock as a fallback.
      const m = /^(\d+) bytes.*copied, ([\d.e+-]+) s/m.exec(err);
      if (code !== 0 || !m) reject(new Error(`dd failed: ${err}`));
      else resolve({ bytes: Number(m[1]), seconds: Number(m[2]) || Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}

const mfs = new MemoryFs();
const data = patternBytes(sizeMb << 20);
const files = Array.from({ length: Number(a.parallel) }, (_v, i) => mfs.addFile(1, `big${i}`, data));
void files;
const open = mfs.open.bind(mfs);
mfs.open = async (nodeid: number): Promise<OpenResult> => ({
  ...(await open(nodeid)), keepCache: a['keep-cache'], directIo: a.direct,
});

const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nydus-fuse-bench-'));
const session = await mountFuse({ mountpoint: dir, fs: mfs, workers, threadpoolSize: pool, readAheadKb: Number(a['ra-kb']) });
try {
  const cpu0 = process.cpuUsage();
  const rates: number[] = [];
  let total = 0;
  for (let i = 0; i < Number(a.runs); i++) {
    const r = await dd(path.join(dir, 'big0'));
    rates.push(r.bytes / r.seconds / 1e6);
    total += r.bytes;
  }
  const t0 = process.hrtime.bigint();
  const par = await Promise.all(files.map((_f, i) => dd(path.join(dir, `big${i}`))));
  const parSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const parBytes = par.reduce((s, r) => s + r.bytes, 0);
  total += parBytes;
  const cpu = process.cpuUsage(cpu0);
  const st = session.stats;
  process.stdout.write(`${JSON.stringify({
    sizeMb, workers, threadpool: pool, readAheadKb: Number(a['ra-kb']), direct: a.direct, keepCache: a['keep-cache'],
    asyncWritev: a['async-writev'],
    ddMBps: rates.map((r) => Math.round(r)),
    parallel: { readers: files.length, aggregateMBps: Math.round(parBytes / parSeconds / 1e6) },
    reads: st.requests.READ ?? 0, avgReadKiB: Math.round((st.readBytes / Math.max(1, st.requests.READ ?? 0)) / 1024),
    daemonCpuSecPerGiB: Number(((cpu.user + cpu.system) / 1e6 / (total / 2 ** 30)).toFixed(2)),
  })}\n`);
} finally {
  await session.unmount();
  await fsp.rmdir(dir);
}
