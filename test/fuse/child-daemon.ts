/**
 * A minimal FUSE daemon for the crash and threadpool tests: mounts a small in-memory tree at
 * argv[2], reading /dev/fuse in mode argv[5] (default poll; in threadpool mode with argv[3] workers,
 * default 2, claiming a pool of argv[4] threads, default 4), prints
 * logged errors to stderr and "ready" to stdout, then serves until killed.
 */
import { mountFuse } from '../../src/fuse/session.js';
import { MemoryFs } from './memory-fs.js';

const [mnt, workers = '2', pool = '4', mode = 'poll'] = process.argv.slice(2);
if (!mnt || (mode !== 'poll' && mode !== 'threadpool')) throw new Error('usage: child-daemon.ts MOUNTPOINT [WORKERS] [THREADPOOL_SIZE] [poll|threadpool]');
const fs = new MemoryFs();
fs.addFile(1, 'hello', 'hello from the child\n');
const logger = {
  debug() {}, info() {}, warn() {},
  error: (msg: string, fields?: Record<string, unknown>) => process.stderr.write(`ERROR ${msg} ${JSON.stringify(fields)}\n`),
};
const session = await mountFuse({ mountpoint: mnt, fs, readMode: mode, workers: Number(workers), threadpoolSize: Number(pool), logger });
// The handler first: the parent may signal as soon as it reads "ready".
process.on('SIGTERM', () => {
  void session.unmount().then(() => process.exit(0));
});
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
