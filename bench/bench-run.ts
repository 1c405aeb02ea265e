/**
 * What the container benchmarks (bench:container, bench:startup) share to run containers and
 * measure them: a cleanup stack unwound on failure and on Ctrl-C, `ctr run` until a ready line,
 * nydusd's backend metrics, the file system types mounted under a directory, and image manifests.
 * @module
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { apiRequest } from '../src/api/api-client.js';
import { RegistryClient } from '../src/registry/registry-client.js';
import type { StartedContainerd } from '../test/helpers/containerd.js';

// ---------------------------------------------------------------------------------------------
// Cleanup: a stack of steps, unwound in reverse by the code that pushed them or on a signal.

interface CleanupStep { what: string; fn: () => Promise<void> }
const cleanupStack: CleanupStep[] = [];
let logCleanup: (s: string) => void = (s) => { process.stderr.write(`${s}\n`); };

/** Push a cleanup step. */
export function defer(what: string, fn: () => Promise<void>): void {
  cleanupStack.push({ what, fn });
}

/** The current depth of the stack, to unwind to later. */
export function cleanupMark(): number {
  return cleanupStack.length;
}

/** Run the steps pushed after `mark`, newest first; a failing step is logged and the rest still run. */
export async function unwindTo(mark: number): Promise<void> {
  while (cleanupStack.length > mark) {
    const step = cleanupStack.pop() as CleanupStep;
    try {
      await step.fn();
    } catch (e) {
      logCleanup(`cleanup (${step.what}) failed: ${(e as Error).message}`);
    }
  }
}

/** On SIGINT/SIGTERM: log through `log`, unwind everything, exit 130. Call once from main. */
export function unwindOnSignals(log: (s: string) => void): void {
  logCleanup = log;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping everything`);
      void unwindTo(0).finally(() => process.exit(130));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Running and measuring

/** An image manifest's parts the benchmarks look at. */
export interface Manifest { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number; annotations?: Record<string, string> }> }

/** The manifest of `repo:tag` in the plain-HTTP registry at `host`. */
export async function manifestOf(host: string, repo: string, tag = '1'): Promise<Manifest> {
  const c = new RegistryClient(host, { plainHttp: true });
  try {
    return JSON.parse(Buffer.from((await c.getManifest(repo, tag)).data).toString()) as Manifest;
  } finally {
    await c.close();
  }
}

/** When the ready line appeared (ms since t0) and what it captured. */
export interface Ready { readyAt: number; match: RegExpExecArray; output: string }

/**
 * `ctr -a ADDRESS args…`; resolves after ctr exited 0 with the time the first line matching
 * `ready` (multiline regex) appeared on its stdout (ms since `t0`). `onReady` runs as soon as the
 * line is seen, while the container still exists.
 */
export function runUntilReady(cd: StartedContainerd, args: readonly string[], t0: number, ready: RegExp, onReady: () => Promise<void> = async () => {}, timeoutMs = 30 * 60_000): Promise<Ready> {
  return new Promise((resolve, reject) => {
    const child = spawn('ctr', ['-a', cd.address, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let seen: Ready | undefined;
    let hook: Promise<void> = Promise.resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = ready.exec(out);
      if (m && !seen) {
        seen = { readyAt: performance.now() - t0, match: m, output: '' };
        hook = onReady();
      }
    });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      hook.then(() => {
        if (code !== 0 || !seen) reject(new Error(`Cannot run the container: ctr ${args.join(' ')} ended (${signal ?? `exit ${code}`}) ${seen ? 'with' : 'without'} its ready line:\n${out.slice(-4000)}\n${err.slice(-4000)}`));
        else resolve({ ...seen, output: out });
      }, reject);
    });
  });
}

/** nydusd's backend metrics summed over its mounts. */
export interface BackendMetrics { bytes: number; reads: number }

/** read_amount_total / read_count of every mount of the nydusd at API socket `sock`, summed. */
export async function nydusdBackendMetrics(sock: string): Promise<BackendMetrics> {
  const daemon = await apiRequest(sock, 'GET', '/api/v1/daemon');
  const mounts = Object.keys((daemon.body as { backend_collection?: Record<string, unknown> }).backend_collection ?? {});
  const m = { bytes: 0, reads: 0 };
  for (const mp of mounts) {
    const r = await apiRequest(sock, 'GET', `/api/v1/metrics/backend?id=${encodeURIComponent(mp)}`);
    const b = r.body as { read_amount_total?: number; read_count?: number };
    m.bytes += b.read_amount_total ?? 0;
    m.reads += b.read_count ?? 0;
  }
  return m;
}

/** Mount points and file system types at or under `dir` (e.g. `fuse.nydusfs`, `erofs`). */
export function mountsWithTypesUnder(dir: string): Array<{ mountPoint: string; fsType: string }> {
  if (!fs.existsSync(dir)) return [];
  const real = fs.realpathSync(dir);
  const out: Array<{ mountPoint: string; fsType: string }> = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    const mp = f[4];
    if (sep >= 0 && mp !== undefined && (mp === real || mp.startsWith(`${real}/`))) out.push({ mountPoint: mp, fsType: f[sep + 1] as string });
  }
  return out;
}

/** File system types of the mounts at or under `dir`. */
export function fsTypesUnder(dir: string): string[] {
  return mountsWithTypesUnder(dir).map((m) => m.fsType);
}
