/**
 * Test helpers for processes, temporary directories and kernel mounts (EROFS via explicit loop
 * devices, read-only overlayfs). Every helper cleans up exactly what it created, by its own handle
 * (mount point, loop device), also when the callback throws. Linux only; mounting needs root.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (two levels above this file). */
export const REPO_ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Options of {@link run}. */
export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Kill the child with SIGKILL after this many milliseconds (then `code` is -1). */
  timeoutMs?: number;
}

/** Outcome of {@link run}. `code` is the exit status, or -1 when the child died of a signal. */
export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Spawns `cmd args` (no shell), collects stdout (bytes) and stderr (text). Never throws for a
 * non-zero exit; rejects only when the program cannot be started (ENOENT …). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        /* child exited before reading all input: its exit status tells */
      });
      child.stdin!.end(opts.input);
    }
  });
}

/** Like {@link run} but throws (with the command, status and stderr in the message) unless the
 * exit code is 0. Returns the result for its stdout. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `Command failed (${r.signal ?? `exit ${r.code}`}): ${cmd} ${args.join(' ')}\n${r.stderr.trim()}`,
    );
  }
  return r;
}

/** Command-line tools under bin/. */
export type CliTool = 'nydus-image' | 'nydusd' | 'nydusctl' | 'nydus-backend-proxy' | 'nydusify';

/** Runs `bin/<tool> args` of this repository (absolute path, so any `cwd` works). */
export function runCli(
  tool: CliTool,
  args: readonly string[],
  opts: { input?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return run(path.join(REPO_ROOT, 'bin', tool), args, opts);
}

/** runCli with stdout and stderr as text. */
export async function runCliText(tool: CliTool, args: readonly string[], opts: Parameters<typeof runCli>[2] = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runCli(tool, args, opts);
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

// ---------------------------------------------------------------------------------------------
// Mount bookkeeping

/** Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of /proc mount
 * tables. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points (absolute, as the kernel reports them) currently mounted in this namespace. */
export function listMountPoints(): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4 && f[4] !== undefined) out.push(unescapeMountField(f[4]));
  }
  return out;
}

/** True when `dir` (resolved) is a mount point right now. */
export function isMounted(dir: string): boolean {
  const want = path.resolve(dir);
  return listMountPoints().includes(want);
}

/** Loop devices (e.g. /dev/loop3) whose backing file is `file` or lies under the directory `file`. */
export function loopDevicesBackedBy(file: string): string[] {
  const want = path.resolve(file);
  const out: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => n.startsWith('loop'));
  } catch {
    return out;
  }
  for (const n of names) {
    let backing: string;
    try {
      backing = fs.readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue; // not attached
    }
    backing = backing.replace(/ \(deleted\)$/, '');
    if (backing === want || backing.startsWith(want + '/')) out.push(`/dev/${n}`);
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Unmounts `dir`; retries on EBUSY (e.g. a just-closed file) and falls back to a lazy unmount. */
export async function umount(dir: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 5; i++) {
    const r = await run('umount', [dir]);
    if (r.code === 0) return;
    last = r.stderr.trim();
    if (!isMounted(dir)) return;
    await sleep(100 * (i + 1));
  }
  const r = await run('umount', ['-l', dir]);
  if (r.code !== 0 && isMounted(dir)) {
    throw new Error(`Cannot unmount ${dir}: ${last} / ${r.stderr.trim()}`);
  }
}

/** `losetup -f --show -r file`: attaches a free loop device read-only, returns its path. */
export async function attachLoop(file: string): Promise<string> {
  // Retried: another process may grab the free device between losetup's search and its set-up.
  for (let i = 0; ; i++) {
    const r = await run('losetup', ['-f', '--show', '-r', file]);
    const dev = r.stdout.toString('utf8').trim();
    if (r.code === 0 && dev.startsWith('/dev/loop')) return dev;
    if (i >= 4 || !/busy|resource temporarily/i.test(r.stderr)) {
      throw new Error(`Cannot attach loop device for ${file}: ${r.stderr.trim() || `losetup printed '${dev}'`}`);
    }
    await sleep(50 * (i + 1));
  }
}

/** `losetup -d dev`, retried a few times (the kernel may still hold a just-unmounted device). */
export async function detachLoop(dev: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 5; i++) {
    const r = await run('losetup', ['-d', dev]);
    if (r.code === 0) return;
    last = r.stderr.trim();
    await sleep(100 * (i + 1));
  }
  throw new Error(`Cannot detach ${dev}: ${last}`);
}

/** Runs the cleanup steps in order, all of them, and rethrows the first failure. */
async function cleanupAll(steps: Array<() => Promise<void>>): Promise<void> {
  let first: unknown;
  let failed = false;
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      if (!failed) first = e;
      failed = true;
    }
  }
  if (failed) throw first;
}

/** Runs `fn`, then `cleanup`; a failure of `fn` wins over a failure of the cleanup. */
async function withCleanup<T>(fn: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    try {
      await cleanup();
    } catch {
      /* the callback's error is the interesting one */
    }
    throw e;
  }
  await cleanup();
  return result;
}

async function makeMountDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Attaches `image` to a loop device (read-only), mounts it as EROFS (`-o ro`) on a fresh temporary
 * directory, runs `fn(mountPoint)`, then unmounts, detaches the loop device and removes the
 * directory — also when `fn` throws.
 */
export async function withLoopErofs<T>(image: string, fn: (mnt: string) => Promise<T>): Promise<T> {
  const loop = await attachLoop(image);
  let mnt: string | undefined;
  let mounted = false;
  return withCleanup(
    async () => {
      mnt = await makeMountDir('nydus-erofs-');
      await runOk('mount', ['-t', 'erofs', '-o', 'ro', loop, mnt]);
      mounted = true;
      return fn(mnt);
    },
    () =>
      cleanupAll([
        async () => {
          if (mounted && mnt) await umount(mnt);
        },
        async () => detachLoop(loop),
        async () => {
          if (mnt) await fsp.rmdir(mnt);
        },
      ]),
  );
}

/**
 * Mounts a RAFS v6 / EROFS bootstrap whose data lives in separate blob device(s): every file is
 * attached read-only to its own loop device, then
 * `mount -t erofs -o ro,device=<blob loop>[,device=…] <bootstrap loop> <tmp>`.
 * `blobRaw` is one raw blob file, or several in device-table order. Cleans up like
 * {@link withLoopErofs}.
 */
export async function withErofsDevice<T>(
  bootstrap: string,
  blobRaw: string | readonly string[],
  fn: (mnt: string) => Promise<T>,
): Promise<T> {
  const blobs = typeof blobRaw === 'string' ? [blobRaw] : [...blobRaw];
  const loops: string[] = [];
  let mnt: string | undefined;
  let mounted = false;
  return withCleanup(
    async () => {
      const bootLoop = await attachLoop(bootstrap);
      loops.push(bootLoop);
      const devOpts: string[] = [];
      for (const b of blobs) {
        const l = await attachLoop(b);
        loops.push(l);
        devOpts.push(`device=${l}`);
      }
      mnt = await makeMountDir('nydus-erofs-');
      await runOk('mount', ['-t', 'erofs', '-o', ['ro', ...devOpts].join(','), bootLoop, mnt]);
      mounted = true;
      return fn(mnt);
    },
    () =>
      cleanupAll([
        async () => {
          if (mounted && mnt) await umount(mnt);
        },
        ...loops.map((l) => async () => detachLoop(l)),
        async () => {
          if (mnt) await fsp.rmdir(mnt);
        },
      ]),
  );
}

/**
 * Mounts a read-only overlay of `lowers` (given bottom … top, as layers are usually listed) on a
 * fresh temporary directory, runs `fn`, unmounts and removes the directory. overlayfs wants the
 * topmost layer first, so the option is `lowerdir=top:…:bottom`. With a single layer, an empty
 * bottom directory is added (some kernels refuse an overlay of one lower layer without upper).
 * `options` are extra mount options (e.g. `['redirect_dir=follow']`).
 */
export async function withOverlay<T>(
  lowers: readonly string[],
  fn: (mnt: string) => Promise<T>,
  opts: { options?: readonly string[] } = {},
): Promise<T> {
  if (lowers.length === 0) throw new Error('Cannot mount overlay: no lower layers');
  for (const l of lowers) {
    if (/[:,\\\n]/.test(l)) throw new Error(`Cannot mount overlay: layer path has ':', ',' or '\\': ${l}`);
  }
  let mnt: string | undefined;
  let empty: string | undefined;
  let mounted = false;
  return withCleanup(
    async () => {
      const layers = lowers.map((l) => path.resolve(l));
      if (layers.length === 1) {
        empty = await makeMountDir('nydus-ovl-empty-');
        layers.unshift(empty);
      }
      mnt = await makeMountDir('nydus-ovl-');
      const lowerdir = [...layers].reverse().join(':');
      await runOk('mount', ['-t', 'overlay', 'overlay', '-o', [`lowerdir=${lowerdir}`, ...(opts.options ?? [])].join(','), mnt]);
      mounted = true;
      return fn(mnt);
    },
    () =>
      cleanupAll([
        async () => {
          if (mounted && mnt) await umount(mnt);
        },
        async () => {
          if (mnt) await fsp.rmdir(mnt);
        },
        async () => {
          if (empty) await fsp.rmdir(empty);
        },
      ]),
  );
}

/**
 * Runs `fsck.erofs` (erofs-utils 1.5) on `image`. `device` is the extra blob device
 * (`--device=`, a file path works); `extract` checks all file data by extracting to that directory
 * (`--extract=`, which must not exist yet or be empty). Returns the exit code and stdout+stderr.
 */
export async function fsckErofs(
  image: string,
  opts: { device?: string; extract?: string } = {},
): Promise<{ code: number; output: string }> {
  const args: string[] = [];
  if (opts.device !== undefined) args.push(`--device=${opts.device}`);
  if (opts.extract !== undefined) args.push(`--extract=${opts.extract}`);
  args.push(image);
  const r = await run('fsck.erofs', args);
  return { code: r.code, output: r.stdout.toString('utf8') + r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

/** What {@link tempDir} needs of a node:test TestContext (or SuiteContext-like object). */
export interface CleanupRegistrar {
  after(fn: () => unknown): void;
}

const pendingTempDirs = new Set<string>();
let exitHookInstalled = false;

/** Unmounts everything mounted at or below `dir` (deepest first), detaches loop devices backed by
 * files under it, then removes it. Synchronous, for use in an exit hook. */
export function cleanupTempDirSync(dir: string): void {
  const real = realpathOr(dir);
  const mps = listMountPoints()
    .filter((m) => m === real || m.startsWith(real + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mps) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* give up on this one */
      }
    }
  }
  for (const dev of loopDevicesBackedBy(real)) {
    try {
      execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
    } catch {
      /* ignore */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  pendingTempDirs.delete(dir);
}

/** Async version of {@link cleanupTempDirSync}. */
export async function cleanupTempDir(dir: string): Promise<void> {
  const real = realpathOr(dir);
  const mps = listMountPoints()
    .filter((m) => m === real || m.startsWith(real + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mps) await umount(m);
  for (const dev of loopDevicesBackedBy(real)) await detachLoop(dev);
  await fsp.rm(dir, { recursive: true, force: true });
  pendingTempDirs.delete(dir);
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Creates a fresh directory under os.tmpdir() (`nydus-test-XXXXXX`). With a test context `t`, it is
 * removed in `t.after`; without one, at process exit. Removal first unmounts anything mounted
 * below it and detaches loop devices backed by files in it.
 */
export async function tempDir(t?: CleanupRegistrar, prefix = 'nydus-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  pendingTempDirs.add(dir);
  if (t) {
    t.after(() => cleanupTempDir(dir));
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const d of [...pendingTempDirs]) {
        try {
          cleanupTempDirSync(d);
        } catch {
          /* best effort */
        }
      }
    });
  }
  return dir;
}

/** Resolves true when `child` has exited (or already had), false after `ms` without an exit. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = (): void => { clearTimeout(t); resolve(true); };
    const t = setTimeout(() => { child.off('exit', onExit); resolve(false); }, ms);
    child.once('exit', onExit);
  });
}
