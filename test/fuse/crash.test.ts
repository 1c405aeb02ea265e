/**
 * Daemons in child processes: one killed with SIGKILL leaves a dead mount ("Transport endpoint is
 * not connected") that unmountPath() removes; one whose reads take every threadpool thread says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unmountPath } from '../../src/fuse/session.js';
import { run, tempDir } from '../helpers/mounts.js';

/** Mounting needs root and the FUSE device. */
const SKIP = process.getuid?.() !== 0 || !existsSync('/dev/fuse') ? 'needs root and /dev/fuse' : false;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child-daemon.ts');

async function mounted(mnt: string): Promise<boolean> {
  return (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === mnt);
}

interface Child {
  proc: ChildProcess;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr: () => string;
}

/** Starts child-daemon.ts and waits for "ready". The environment has no UV_THREADPOOL_SIZE (pool of 4). */
async function startChild(mnt: string, args: string[] = []): Promise<Child> {
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, mnt, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<NodeJS.Signals | number | null>((r) => proc.once('exit', (code, sig) => r(sig ?? code)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`child exited ${code} before mounting: ${err}`)));
  });
  return { proc, exited, stderr: () => err };
}

test('unmountPath() cleans up the mount of a daemon killed with SIGKILL', { timeout: 60_000, skip: SKIP }, async (t) => {
  const mnt = await fsp.realpath(await tempDir(t, 'nydus-fuse-crash-'));
  const child = await startChild(mnt, ['2', '4']);
  try {
    const alive = await run('cat', [`${mnt}/hello`]);
    assert.equal(alive.stdout.toString(), 'hello from the child\n');
    assert.equal(child.stderr(), '', 'no errors logged by a daemon with a free threadpool thread');

    child.proc.kill('SIGKILL');
    assert.equal(await child.exited, 'SIGKILL');
    const dead = await run('stat', [mnt], { timeoutMs: 10_000 });
    assert.notEqual(dead.code, 0);
    assert.match(dead.stderr, /Transport endpoint is not connected/);
    assert.equal(await mounted(mnt), true);

    await unmountPath(mnt);
    assert.equal(await mounted(mnt), false);
    assert.equal((await run('stat', [mnt])).code, 0);
    await unmountPath(mnt); // nothing mounted: a no-op
  } finally {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
    await child.exited;
    await unmountPath(mnt);
  }
});

test('a session whose reads take every threadpool thread logs it at mount time, and still unmounts', { timeout: 60_000, skip: SKIP }, async (t) => {
  const mnt = await fsp.realpath(await tempDir(t, 'nydus-fuse-pool-'));
  // Threadpool reads, claiming a pool of 8 while the child really has libuv's default 4: 4 workers take them all.
  const child = await startChild(mnt, ['4', '8', 'threadpool']);
  try {
    assert.match(child.stderr(), /libuv threadpool has no free thread/);
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0);
    assert.equal(await mounted(mnt), false);
  } finally {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
    await child.exited;
    await unmountPath(mnt);
  }
});
