/**
 * Kernel EROFS mounts of a RAFS v6 bootstrap whose blobs are files (the `erofs` fs driver):
 * read-only loop devices over the bootstrap and over each blob file, then
 * `mount -t erofs -o ro,device=<blob loop>… <bootstrap loop> <mountpoint>`. The kernel then
 * answers every lookup, stat and readdir itself from the bootstrap, and reads file data from the
 * blob devices, which nydusd serves on demand through FUSE files. Linux only; needs root, loop
 * devices and EROFS with multi-device support (5.16+).
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

/** Unmount the EROFS mount at `mountpoint` (lazily when busy). Nothing mounted: nothing done. */
export async function unmountErofs(mountpoint: string): Promise<void> {
  const top = await topMountAt(mountpoint);
  if (top && top.fstype !== 'erofs') throw new NydusError('ERR_UNMOUNT', `Cannot unmount ${mountpoint}: the top mount is ${top.fstype}, not erofs`, { path: mountpoint });
  await unmountPath(mountpoint);
}
