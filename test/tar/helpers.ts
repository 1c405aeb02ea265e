/**
 * Shared helpers of the tar tests: temp dirs, running GNU tar, byte sources with chosen chunk
 * splits, and collecting parsed entries.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseTar } from '../../src/tar/parse-tar.js';
import type { ParseTarOptions, TarEntry } from '../../src/tar/types.js';

/** A fresh temp dir, removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'nydus-tar-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Run a command synchronously (throws on failure), returning stdout. */
export function run(cmd: string, args: string[], cwd?: string): Buffer {
  return execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run GNU tar in `cwd` to create `out` from `paths`, with extra `flags`. Returns the archive bytes. */
export function gnuTar(cwd: string, out: string, flags: string[], paths: string[]): Uint8Array {
  run('tar', ['-cf', out, ...flags, ...paths], cwd);
  return new Uint8Array(readFileSync(out));
}

/** Yield `data` in one chunk. */
export async function* whole(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

/** Yield `data` in chunks of `size` bytes. */
export async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(data.length, i + size));
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Yield `data` split at random points (chunks of 0..maxChunk bytes, including empty ones). */
export async function* randomSplits(data: Uint8Array, seed: number, maxChunk: number): AsyncGenerator<Uint8Array> {
  const rnd = prng(seed);
  let i = 0;
  while (i < data.length) {
    const n = Math.floor(rnd() * (maxChunk + 1));
    yield data.subarray(i, Math.min(data.length, i + n));
    i += n;
  }
}

/** An entry with its body reassembled (holes as zeros) and `body` removed. */
export type CollectedEntry = Omit<TarEntry, 'body'> & { content: Uint8Array; segments: number };

/** Reassemble a file's segments into its full content (holes as zeros). */
export async function readContent(entry: TarEntry): Promise<{ content: Uint8Array; segments: number }> {
  const content = new Uint8Array(entry.size);
  let segments = 0;
  let last = 0;
  for await (const seg of entry.body()) {
    if (seg.offset < last) throw new Error(`segment at ${seg.offset} goes backwards (previous ended at ${last})`);
    content.set(seg.data, seg.offset);
    last = seg.offset + seg.data.length;
    segments++;
  }
  return { content, segments };
}

/** Parse a whole archive, reading every body. */
export async function collect(source: AsyncIterable<Uint8Array>, options?: ParseTarOptions): Promise<CollectedEntry[]> {
  const out: CollectedEntry[] = [];
  for await (const entry of parseTar(source, options)) {
    const { content, segments } = await readContent(entry);
    const { body: _body, ...rest } = entry;
    out.push({ ...rest, xattrs: new Map(rest.xattrs), content, segments });
  }
  return out;
}

/** Find the entry at `path` or fail. */
export function byPath(entries: CollectedEntry[], path: string): CollectedEntry {
  const e = entries.find((x) => x.path === path);
  if (e === undefined) throw new Error(`no entry "${path}" among ${entries.map((x) => x.path).join(', ')}`);
  return e;
}

/** Comparable view of an entry (no body; xattrs as hex strings; content as its sha256). */
export function summary(e: CollectedEntry): Record<string, unknown> {
  const { content, segments: _s, xattrs, ...rest } = e;
  return {
    ...rest,
    xattrs: Object.fromEntries([...xattrs].map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
    content: createHash('sha256').update(content).digest('hex'),
  };
}
