/**
 * The eStargz peer (stargz-snapshotter 0.12's containerd-stargz-grpc, built offline by
 * ../shared/peers/estargz/build.sh) for benchmarks: started on its own root and socket with a
 * config that reaches the given registry hosts over plain HTTP and is otherwise the defaults
 * (background fetch and prefetch on, memory metadata store); stopped by its PID with SIGINT (only
 * then does it unmount its FUSE layers), SIGKILL after 10 s, and whatever it left mounted under
 * its root is unmounted.
 * @module
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, waitExit, REPO_ROOT } from '../test/helpers/mounts.js';
import { unmountUnder } from '../test/helpers/containerd.js';

/** The peer's build script (relative to this checkout). */
export const ESTARGZ_BUILD = path.resolve(REPO_ROOT, '..', 'shared', 'peers', 'estargz', 'build.sh');

/** Build (or find) containerd-stargz-grpc; its path. */
export async function estargzBinary(): Promise<string> {
  const r = await run(ESTARGZ_BUILD, [], { timeoutMs: 20 * 60_000 });
  const bin = r.stdout.toString().trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !fs.existsSync(bin)) throw new Error(`Cannot build the eStargz peer with ${ESTARGZ_BUILD} (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return bin;
}

/** A running containerd-stargz-grpc. */
export interface StargzSnapshotter { address: string; root: string; pid: number; log(): string; stop(): Promise<void> }

/** Start containerd-stargz-grpc in `dir` (config, root, socket inside), reaching `hosts` over plain HTTP. */
export async function startStargz(bin: string, dir: string, hosts: readonly string[]): Promise<StargzSnapshotter> {
  const root = path.join(dir, 'root');
  const address = path.join(dir, 'stargz.sock');
  fs.mkdirSync(root, { recursive: true });
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, hosts.map((h) => `[[resolver.host.${JSON.stringify(h)}.mirrors]]\n  host = ${JSON.stringify(h)}\n  insecure = true\n`).join(''));
  const logFile = path.join(dir, 'stargz.log');
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(bin, ['-address', address, '-config', config, '-root', root, '-log-level', 'info'], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const log = (): string => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGINT');
      if (!(await waitExit(child, 10_000))) {
        child.kill('SIGKILL');
        await waitExit(child, 5000);
      }
    }
    await unmountUnder([root]);
  };
  const spawnError = new Promise<Error>((r) => child.once('error', r));
  const end = Date.now() + 30_000;
  try {
    for (;;) {
      const early = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
      if (early) throw new Error(`Cannot start ${bin}: ${early.message}`);
      if (child.exitCode !== null) throw new Error(`containerd-stargz-grpc exited ${child.exitCode}:\n${log().slice(-3000)}`);
      if (fs.existsSync(address)) break;
      if (Date.now() > end) throw new Error(`containerd-stargz-grpc did not create ${address} in 30 s:\n${log().slice(-3000)}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { address, root, pid: child.pid as number, log, stop };
}
