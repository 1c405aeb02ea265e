/**
 * containerd 1.6 (Debian) and bin/nydus-snapshotter for tests and benchmarks. containerd runs with
 * a config in a temporary directory (root, state, gRPC and ttrpc sockets, runc root all inside it,
 * the CRI plugin off, the snapshotter as proxy plugin `nydus`); the snapshotter runs on its own
 * root. Garbage collection runs right after every deletion (`deletion_threshold = 1`; by default
 * containerd waits up to 49 times the average collection time before a removed container's
 * snapshot reaches the snapshotter), and gc() runs one on demand. Everything is stopped by its own handle: containers' tasks are killed and deleted through
 * ctr, containerd and the snapshotter by PID, leftover containerd-shim processes of this instance
 * (found by their `-address`) and their children by PID, the snapshotter's nydusd by its PID file,
 * and whatever is still mounted under their directories is unmounted, newest mount first.
 * @module
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, run, umount, waitExit, type RunResult } from './mounts.js';

/** A running containerd. */
export interface StartedContainerd {
  /** Its temporary directory. */
  dir: string;
  /** gRPC socket (`ctr -a`). */
  address: string;
  root: string;
  state: string;
  /** runc state root for `ctr run --runc-root`. */
  runcRoot: string;
  pid: number;
  /** containerd's log so far. */
  log(): string;
  /** `ctr -a ADDRESS args…`. */
  ctr(args: readonly string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Like ctr, but throws unless it exits 0; returns stdout as text. */
  ctrOk(args: readonly string[], opts?: { timeoutMs?: number; input?: string }): Promise<string>;
  /**
   * Run containerd's garbage collection now and wait for it (a lease created and deleted with
   * `--sync`): snapshots of removed containers reach the snapshotter's Remove at once. containerd
   * drops deletion events that arrive while a collection runs, so without this a removal can
   * wait for the next scheduled collection.
   */
  gc(): Promise<void>;
  /** `ctr-remote -a ADDRESS args…` (stargz-snapshotter's ctr, for `image rpull`). */
  ctrRemote(args: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Kill and delete every task and container, stop containerd, kill leftover shims, unmount leftovers. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startContainerd}. */
export interface StartContainerdOptions {
  /** Temporary directory for everything containerd writes. */
  dir: string;
  /** Proxy snapshotters: name → socket. */
  snapshotters?: Record<string, string>;
  /** More directories whose leftover mounts stop() unmounts (e.g. the snapshotter's root). */
  cleanupDirs?: string[];
  /** containerd's log level (default info). */
  logLevel?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait up to `ms` for `pid` (not necessarily a child) to be gone. */
async function waitPidGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > end) return false;
    await sleep(25);
  }
  return true;
}

/** PIDs whose command line contains every string of `parts` as separate arguments, in order. */
export function pidsWithArgs(parts: readonly string[]): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let args: string[];
    try {
      args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    let k = 0;
    for (const a of args) if (a === parts[k]) k++;
    if (k === parts.length) out.push(Number(d));
  }
  return out;
}

/** Every descendant of `pid` (children first found, by /proc/<pid>/stat's ppid). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(d), ppid);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    for (const [c, pp] of parentOf) if (pp === p) { out.push(c); todo.push(c); }
  }
  return out;
}

/** Mount points at or under any of `dirs`, newest first (reverse /proc/self/mountinfo order). */
export function mountsUnder(dirs: readonly string[]): string[] {
  const real = dirs.map((d) => { try { return fs.realpathSync(d); } catch { return path.resolve(d); } });
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (real.some((d) => p === d || p.startsWith(`${d}/`))) out.push(p);
  }
  return out.reverse();
}

/** Unmount everything under `dirs`, newest mount first. */
export async function unmountUnder(dirs: readonly string[]): Promise<void> {
  for (const m of mountsUnder(dirs)) {
    try {
      await umount(m);
    } catch {
      await run('umount', ['-l', m]);
    }
  }
}

/** Start containerd with a config in `o.dir`; resolves when `ctr version` answers. */
export async function startContainerd(o: StartContainerdOptions): Promise<StartedContainerd> {
  const dir = path.resolve(o.dir);
  const root = path.join(dir, 'root');
  const state = path.join(dir, 'state');
  const address = path.join(dir, 'containerd.sock');
  const runcRoot = path.join(dir, 'runc');
  for (const d of [root, state, runcRoot, path.join(dir, 'opt')]) fs.mkdirSync(d, { recursive: true });
  const proxies = Object.entries(o.snapshotters ?? {})
    .map(([name, sock]) => `  [proxy_plugins.${JSON.stringify(name)}]\n    type = "snapshot"\n    address = ${JSON.stringify(sock)}\n`).join('');
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, `version = 2
root = ${JSON.stringify(root)}
state = ${JSON.stringify(state)}
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = ${JSON.stringify(address)}
[ttrpc]
  address = ${JSON.stringify(`${address}.ttrpc`)}
[debug]
  level = ${JSON.stringify(o.logLevel ?? 'info')}
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${JSON.stringify(path.join(dir, 'opt'))}
  [plugins."io.containerd.gc.v1.scheduler"]
    deletion_threshold = 1
[proxy_plugins]
${proxies}`);
  const logFile = path.join(dir, 'containerd.log');
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const spawnError = new Promise<Error>((r) => child.once('error', r));
  const log = (): string => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const ctr = (args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> =>
    run('ctr', ['-a', address, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  const ctrOk = async (args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> => {
    const r = await ctr(args, opts);
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} failed (${r.signal ?? `exit ${r.code}`}): ${r.stderr.trim()}`);
    return r.stdout.toString('utf8');
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      // Tasks and containers of every namespace, through containerd while it runs.
      const nss = (await ctr(['namespaces', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.toString().split('\n').filter(Boolean);
      for (const ns of nss) {
        const tasks = (await ctr(['-n', ns, 'tasks', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.toString().split('\n').filter(Boolean);
        for (const t of tasks) {
          await ctr(['-n', ns, 'tasks', 'kill', '-s', 'SIGKILL', t], { timeoutMs: 10_000 });
          for (let i = 0; i < 40; i++) {
            const r = await ctr(['-n', ns, 'tasks', 'delete', t], { timeoutMs: 10_000 });
            if (r.code === 0 || /not found/.test(r.stderr)) break;
            await sleep(50);
          }
        }
        const cs = (await ctr(['-n', ns, 'containers', 'ls', '-q'], { timeoutMs: 10_000 })).stdout.toString().split('\n').filter(Boolean);
        for (const c of cs) await ctr(['-n', ns, 'containers', 'rm', c], { timeoutMs: 10_000 });
      }
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      if (!(await waitExit(child, 10_000)) && child.pid !== undefined) {
        process.kill(child.pid, 'SIGKILL');
        await waitExit(child, 5000);
      }
    }
    // Shims of this instance (they outlive containerd) and the container processes under them.
    for (const shim of pidsWithArgs(['-address', address])) {
      for (const p of [...descendants(shim), shim]) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      }
      await waitPidGone(shim, 5000);
    }
    await unmountUnder([root, state, ...(o.cleanupDirs ?? [])]);
  };
  const end = Date.now() + 20_000;
  try {
    for (;;) {
      const early = await Promise.race([spawnError, sleep(50).then(() => undefined)]);
      if (early) throw new Error(`Cannot start containerd: ${early.message} (apt-get install -y containerd runc)`);
      if (child.exitCode !== null) throw new Error(`Cannot start containerd: it exited with ${child.exitCode}:\n${log().slice(-4000)}`);
      if (fs.existsSync(address) && (await ctr(['version'], { timeoutMs: 5000 })).code === 0) break;
      if (Date.now() > end) throw new Error(`Cannot start containerd: ctr version did not answer in 20 s:\n${log().slice(-4000)}`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  let leases = 0;
  const gc = async (): Promise<void> => {
    const id = `gc-${process.pid}-${++leases}`;
    await ctrOk(['leases', 'create', '--id', id]);
    await ctrOk(['leases', 'delete', '--sync', id]);
  };
  return {
    dir, address, root, state, runcRoot, pid: child.pid as number, log, ctr, ctrOk, stop, gc,
    ctrRemote: (args, opts = {}) => run('ctr-remote', ['-a', address, ...args], { timeoutMs: opts.timeoutMs ?? 120_000 }),
  };
}

/** A running bin/nydus-snapshotter. */
export interface StartedSnapshotter {
  pid: number;
  /** gRPC socket. */
  address: string;
  root: string;
  /** Its stderr so far (the log). */
  log(): string;
  /** PID of its shared nydusd (from `<root>/nydusd/nydusd.pid`), when that runs. */
  nydusdPid(): number | undefined;
  /** nydusd's API socket. */
  nydusdSocket: string;
  /** SIGTERM (SIGKILL after 10 s) and wait; its nydusd may keep running (see stopNydusd). */
  stop(): Promise<void>;
}

/** The PID of the shared nydusd of snapshotter root `root`, when it runs. */
export function snapshotterNydusdPid(root: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(root, 'nydusd', 'nydusd.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stop the shared nydusd of snapshotter root `root` by its PID (SIGTERM, SIGKILL after 10 s), then unmount what is left under `root/mnt`. */
export async function stopNydusd(root: string): Promise<void> {
  const pid = snapshotterNydusdPid(root);
  if (pid !== undefined) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    if (!(await waitPidGone(pid, 10_000))) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await waitPidGone(pid, 5000);
    }
  }
  await unmountUnder([path.join(root, 'mnt')]);
}

/** Start bin/nydus-snapshotter on `root` serving `address`; resolves once it logs that it serves. */
export async function startNydusSnapshotter(o: { root: string; address: string; args?: readonly string[]; logLevel?: string; env?: NodeJS.ProcessEnv }): Promise<StartedSnapshotter> {
  fs.mkdirSync(o.root, { recursive: true });
  const args = ['--root', o.root, '--address', o.address, '--log-level', o.logLevel ?? 'info', ...(o.args ?? [])];
  const child = spawn(path.join(REPO_ROOT, 'bin', 'nydus-snapshotter'), args, { stdio: ['ignore', 'ignore', 'pipe'], env: o.env ?? process.env });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); if (stderr.length > 4 << 20) stderr = stderr.slice(-(2 << 20)); });
  const spawnError = new Promise<Error>((r) => child.once('error', r));
  let stopped = false;
  const h: StartedSnapshotter = {
    pid: child.pid ?? -1, address: o.address, root: o.root, log: () => stderr,
    nydusdPid: () => snapshotterNydusdPid(o.root),
    nydusdSocket: path.join(o.root, 'nydusd', 'api.sock'),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        if (!(await waitExit(child, 10_000))) {
          process.kill(child.pid, 'SIGKILL');
          await waitExit(child, 5000);
        }
      }
    },
  };
  const end = Date.now() + 30_000;
  try {
    for (;;) {
      const early = await Promise.race([spawnError, sleep(25).then(() => undefined)]);
      if (early) throw new Error(`Cannot start nydus-snapshotter: ${early.message}`);
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nydus-snapshotter exited (${child.exitCode ?? child.signalCode}) before serving:\n${stderr}`);
      if (stderr.includes('snapshotter serving')) break;
      if (Date.now() > end) throw new Error(`nydus-snapshotter did not serve within 30 s:\n${stderr}`);
    }
  } catch (e) {
    await h.stop();
    throw e;
  }
  return h;
}
