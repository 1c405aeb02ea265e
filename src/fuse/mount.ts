/**
 * Kernel-side plumbing of a FUSE mount, done with the system's tools and files: mount(8) with the
 * /dev/fuse descriptor, the mount table, the backing device's readahead, umount(8), and aborting a
 * connection through fusectl. Linux only; needs root.
 *
 * The /proc and /sys files are read and written synchronously on purpose: those calls never wait
 * for a disk, and a session's blocked /dev/fuse reads may hold every libuv threadpool thread, so
 * an async call could wait for the very mount it is trying to clean up.
 * @module
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NydusError } from '../util/errors.js';

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  /** Field 1: mount id. */
  id: number;
  /** Field 3: `major:minor` of the file system's device (`0:63` for a FUSE mount). */
  device: string;
  /** Field 5: mount point, unescaped. */
  mountpoint: string;
  /** File system type after the ` - ` separator (`fuse.nydusfs`). */
  fstype: string;
  /** Mount source (`nydusfs`). */
  source: string;
}

/** Decodes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of mount tables. */
function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount table of this process's namespace, in mount order (later entries are on top). */
export async function readMountTable(): Promise<MountEntry[]> {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]), device: f[2] ?? '', mountpoint: unescapeField(f[4] ?? ''),
      fstype: f[sep + 1] ?? '', source: unescapeField(f[sep + 2] ?? ''),
    });
  }
  return out;
}

/** The topmost mount at exactly `mountpoint` (absolute, canonical), if any. */
export async function topMountAt(mountpoint: string): Promise<MountEntry | undefined> {
  const all = await readMountTable();
  let top: MountEntry | undefined;
  for (const m of all) if (m.mountpoint === mountpoint) top = m;
  return top;
}

/**
 * `mountpoint` made absolute and canonical without touching the mount itself: the parent directory
 * is resolved with realpath, so this works on a dead FUSE mount ("Transport endpoint is not connected").
 */
export async function canonicalMountpoint(mountpoint: string): Promise<string> {
  const abs = path.resolve(mountpoint);
  if (abs === '/') return abs;
  try {
    return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

/** Exit code and stderr of a tool. */
export interface RunResult {
  code: number;
  stderr: string;
}

/** Runs a program (no shell) with `extraFd` as its fd 3 when given; collects stderr (and stdout). */
export function run(cmd: string, args: readonly string[], extraFd?: number): Promise<RunResult & { stdout: string }> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (extraFd !== undefined) stdio.push(extraFd);
    const child = spawn(cmd, args, { stdio });
    const err: Buffer[] = [];
    const out: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8').trim(), stderr: Buffer.concat(err).toString('utf8').trim() || (signal ? `killed by ${signal}` : '') });
    });
  });
}

/** What to mount. */
export interface FuseMountSpec {
  /** Open /dev/fuse descriptor. */
  fd: number;
  /** Absolute, canonical mount point. */
  mountpoint: string;
  /** Mount source shown in the mount table. */
  fsName: string;
  /** Type suffix: the type is `fuse.<subtype>`. */
  subtype: string;
}

/** Characters allowed in a file system name or subtype (they end up in mount(8) arguments). */
const SAFE_NAME = /^[A-Za-z0-9_.+-]{1,64}$/;

/**
 * Mounts the FUSE connection of `spec.fd` read-only at `spec.mountpoint`: runs
 * `mount -i -t fuse.<subtype> -o fd=3,rootmode=40000,user_id=U,group_id=G,default_permissions,allow_other,ro <fsName> <mnt>`
 * with the descriptor as the child's fd 3 (`-i`: no mount.fuse helper). The kernel queues INIT
 * before mount(2) returns; it is answered by whoever reads the descriptor.
 */
export async function mountFuseDevice(spec: FuseMountSpec): Promise<void> {
  if (!SAFE_NAME.test(spec.fsName)) throw new RangeError(`Cannot mount: fsName "${spec.fsName}" must match ${SAFE_NAME}`);
  if (!SAFE_NAME.test(spec.subtype)) throw new RangeError(`Cannot mount: subtype "${spec.subtype}" must match ${SAFE_NAME}`);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const opts = `fd=3,rootmode=40000,user_id=${uid},group_id=${gid},default_permissions,allow_other,ro`;
  const r = await run('mount', ['-i', '-t', `fuse.${spec.subtype}`, '-o', opts, spec.fsName, spec.mountpoint], spec.fd);
  if (r.code !== 0) {
    throw new NydusError('ERR_FUSE_MOUNT', `Cannot mount FUSE at ${spec.mountpoint}: mount exited ${r.code}: ${r.stderr}`, { path: spec.mountpoint });
  }
}

/** Sets the readahead of a mount's backing device (`/sys/class/bdi/<maj:min>/read_ahead_kb`). */
export async function setReadAheadKb(device: string, kb: number): Promise<void> {
  fs.writeFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, `${Math.trunc(kb)}\n`);
}

/** Reads a mount's readahead (KiB). */
export async function getReadAheadKb(device: string): Promise<number> {
  return Number(fs.readFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, 'utf8').trim());
}

/**
 * Unmounts whatever is mounted at `mountpoint`: `umount MNT`, and if that fails while something is
 * still mounted there, `umount -l MNT` (lazy). Works on the dead mount of a killed daemon
 * ("Transport endpoint is not connected"). Nothing mounted there: returns at once. Throws
 * `ERR_UNMOUNT` when the path stays mounted.
 */
export async function unmountPath(mountpoint: string): Promise<void> {
  const mnt = await canonicalMountpoint(mountpoint);
  if (!(await topMountAt(mnt))) return;
  const first = await run('umount', [mnt]);
  if (first.code === 0 || !(await topMountAt(mnt))) return;
  const lazy = await run('umount', ['-l', mnt]);
  if (lazy.code !== 0 && (await topMountAt(mnt))) {
    throw new NydusError('ERR_UNMOUNT', `Cannot unmount ${mnt}: ${first.stderr}; lazy unmount: ${lazy.stderr}`, { path: mnt });
  }
}

/** Runs `umount [-l] MNT` once; the exit code and stderr. */
export async function umount(mountpoint: string, lazy = false): Promise<RunResult> {
  return run('umount', lazy ? ['-l', mountpoint] : [mountpoint]);
}

/**
 * Aborts the FUSE connection of the mount whose device is `device` (`0:<minor>`): every pending and
 * future request fails, the daemon's reads end with ENODEV. Uses /sys/fs/fuse/connections when
 * fusectl is mounted there, else mounts fusectl on a temporary directory for the write.
 */
export async function abortConnection(device: string): Promise<void> {
  const minor = device.split(':')[1];
  if (minor === undefined || !/^\d+$/.test(minor)) throw new RangeError(`Cannot abort FUSE connection: bad device "${device}"`);
  const sys = `/sys/fs/fuse/connections/${minor}/abort`;
  try {
    fs.writeFileSync(sys, '1');
    return;
  } catch {
    /* fusectl not mounted there */
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-fusectl-'));
  try {
    const m = await run('mount', ['-t', 'fusectl', 'fusectl', dir]);
    if (m.code !== 0) throw new NydusError('ERR_FUSE_ABORT', `Cannot abort FUSE connection ${minor}: mounting fusectl failed: ${m.stderr}`);
    try {
      fs.writeFileSync(path.join(dir, minor, 'abort'), '1');
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    try {
      fs.rmdirSync(dir);
    } catch {
      /* left for tmp cleaning */
    }
  }
}
