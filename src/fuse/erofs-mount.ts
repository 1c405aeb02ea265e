/**
 * Kernel EROFS mounts of a RAFS v6 bootstrap whose blobs are files (the `erofs` fs driver). The
 * kernel then answers every lookup, stat and readdir itself from the bootstrap, and reads file
 * data from the blob files, which nydusd serves on demand through FUSE files. Two ways:
 *  - file-backed (Linux 6.12+, EROFS_FS_BACKED_BY_FILE): mount(2) with the bootstrap file as
 *    source and `device=<blob file>` options; no loop devices, and the kernel reads the blob
 *    files' page cache directly. mount(8) cannot ask for this (it puts a loop device under any
 *    regular-file source), so the system call is made through perl, which every Debian has.
 *  - loop devices: read-only loop devices over the bootstrap and over each blob file, then
 *    `mount -t erofs -o ro,device=<blob loop>… <bootstrap loop> <mountpoint>` (5.16+).
 * Linux only; needs root.
 * @module
 */
import { NydusError } from '../util/errors.js';
import { run, topMountAt, unmountPath } from './mount.js';

/** Attach `file` to a free loop device, read-only; returns `/dev/loopN`. */
export async function attachLoop(file: string): Promise<string> {
  const r = await run('losetup', ['--find', '--show', '--read-only', '--direct-io=off', file]);
  if (r.code !== 0 || !r.stdout.startsWith('/dev/')) {
    throw new NydusError('ERR_LOOP', `Cannot attach ${file} to a loop device: losetup exited ${r.code}: ${r.stderr}`, { path: file });
  }
  return r.stdout;
}

/**
 * Detach loop device `dev`. A device still in use (a lazily unmounted file system) is marked to
 * detach itself when its last user goes (the kernel's autoclear), which losetup -d does.
 */
export async function detachLoop(dev: string): Promise<void> {
  const r = await run('losetup', ['--detach', dev]);
  if (r.code !== 0 && !/No such device|not a loop/i.test(r.stderr)) {
    throw new NydusError('ERR_LOOP', `Cannot detach loop device ${dev}: losetup exited ${r.code}: ${r.stderr}`, { path: dev });
  }
}

/** Mount the EROFS image on `bootDev` at `mountpoint` with `devices` as its extra devices, in blob table order. */
export async function mountErofs(bootDev: string, devices: readonly string[], mountpoint: string): Promise<void> {
  const opts = ['ro', ...devices.map((d) => `device=${d}`)].join(',');
  const r = await run('mount', ['-t', 'erofs', '-o', opts, bootDev, mountpoint]);
  if (r.code !== 0) {
    throw new NydusError('ERR_EROFS_MOUNT', `Cannot mount EROFS at ${mountpoint}: mount exited ${r.code}: ${r.stderr}`, { path: mountpoint });
  }
}

/** mount(2)'s number on the architectures where it is known; elsewhere only loop devices are used. */
const SYS_MOUNT: Partial<Record<string, number>> = { x64: 165, arm64: 40 };
const MS_RDONLY = 1;
/** Longest option string the legacy mount(2) takes (one page, with its NUL). */
const MAX_MOUNT_DATA = 4095;
/** Prints errno and message and exits 1 when mount(2) fails. Numbers must be made numeric (+ 0): perl passes strings as pointers. */
const PERL_MOUNT = 'my ($n, $s, $t, $y, $f, $d) = @ARGV; syscall($n + 0, $s, $t, $y, $f + 0, $d) == 0 or do { print STDERR ($! + 0), " $!"; exit 1 }';

/** Why a file-backed mount was not made: `unsupported` means use loop devices instead. */
export class ErofsFileMountError extends NydusError {
  constructor(message: string, readonly unsupported: boolean, mountpoint: string) {
    super('ERR_EROFS_MOUNT', message, { path: mountpoint });
  }
}

/**
 * Mount the EROFS image in file `bootFile` at `mountpoint`, with the regular files `devices` as
 * its extra devices in blob table order, without loop devices. Throws ErofsFileMountError, with
 * `unsupported` set when this kernel or machine cannot (then loop devices can).
 */
export async function mountErofsFiles(bootFile: string, devices: readonly string[], mountpoint: string): Promise<void> {
  const nr = SYS_MOUNT[process.arch];
  const opts = devices.map((d) => `device=${d}`).join(',');
  if (nr === undefined || opts.length > MAX_MOUNT_DATA || devices.some((d) => d.includes(','))) {
    throw new ErofsFileMountError(`Cannot mount EROFS at ${mountpoint} from files: not supported for ${process.arch} or ${devices.length} devices`, true, mountpoint);
  }
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run('perl', ['-e', PERL_MOUNT, String(nr), bootFile, mountpoint, 'erofs', String(MS_RDONLY), opts]);
  } catch (e) {
    throw new ErofsFileMountError(`Cannot mount EROFS at ${mountpoint} from files: cannot run perl: ${(e as Error).message}`, true, mountpoint);
  }
  if (r.code === 0) return;
  const errno = Number.parseInt(r.stderr, 10);
  // EINVAL, ENOTBLK, ENODEV: a kernel without file-backed EROFS (or without EROFS); ENOENT from
  // an old kernel looking the source up as a block device; 127: no perl.
  const unsupported = r.code === 127 || [22, 15, 19, 2].includes(errno);
  throw new ErofsFileMountError(`Cannot mount EROFS at ${mountpoint} from ${bootFile}: mount(2) failed: ${r.stderr || `perl exited ${r.code}`}`, unsupported, mountpoint);
}

/** Unmount the EROFS mount at `mountpoint` (lazily when busy). Nothing mounted: nothing done. */
export async function unmountErofs(mountpoint: string): Promise<void> {
  const top = await topMountAt(mountpoint);
  if (top && top.fstype !== 'erofs') throw new NydusError('ERR_UNMOUNT', `Cannot unmount ${mountpoint}: the top mount is ${top.fstype}, not erofs`, { path: mountpoint });
  await unmountPath(mountpoint);
}
