/**
 * Small helpers shared by the end-to-end tests in this folder: running `nydus-image` and insisting
 * on success, reading its JSON answers, cutting the raw blobs out of an `export --block` image, and
 * GNU tar. Everything mounted or attached goes through test/helpers/mounts.ts.
 * @module
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { runCli, runOk, type RunResult } from '../helpers/mounts.js';
import type { ImageStats } from '../../src/cli/nydus-image/stat-command.js';

/** One entry of `nydus-image inspect -R blobs` (the fields the tests use). */
export interface InspectedBlob {
  index: number;
  blob_id: string;
  mapped_blkaddr: number;
  blocks: number;
  chunk_count: number;
  compressor: string;
  digester: string;
  features: string;
  compressed_size: number;
  uncompressed_size: number;
  toc: { size: number; digest: string };
}

/** The JSON of `nydus-image stat --output-json` for one bootstrap. */
export type StatFigures = ImageStats;

/** EROFS block size: the unit of mapped_blkaddr and blocks. */
export const BLOCK = 4096;

/** Runs `bin/nydus-image args` and fails the test (with its output) unless it exits 0. */
export async function nydusOk(args: readonly string[], opts: { input?: string | Buffer } = {}): Promise<RunResult> {
  const r = await runCli('nydus-image', args, opts);
  assert.equal(
    r.code,
    0,
    `nydus-image ${args.join(' ')} exited ${r.code}\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout.toString('utf8').slice(0, 4000)}`,
  );
  return r;
}

/** `nydus-image inspect -R blobs -B boot`, parsed. */
export async function inspectBlobs(boot: string): Promise<InspectedBlob[]> {
  const r = await nydusOk(['inspect', '-R', 'blobs', '-B', boot]);
  const parsed: unknown = JSON.parse(r.stdout.toString('utf8'));
  assert.ok(Array.isArray(parsed), `inspect -R blobs did not print a JSON array: ${r.stdout.toString('utf8')}`);
  return parsed as InspectedBlob[];
}

/** `nydus-image stat -B boot --output-json FILE`, parsed. With one bootstrap the file holds its
 * figures directly. */
export async function statFigures(boot: string, jsonFile: string): Promise<StatFigures> {
  await nydusOk(['stat', '-B', boot, '--output-json', jsonFile]);
  const figures = JSON.parse(await fsp.readFile(jsonFile, 'utf8')) as StatFigures;
  assert.equal(typeof figures.chunk_refs, 'number', `stat wrote no figures: ${JSON.stringify(figures)}`);
  return figures;
}

/** Copies bytes [offset, offset + length) of `from` into the new file `to`, in 4 MiB steps. */
export async function copyRange(from: string, to: string, offset: number, length: number): Promise<void> {
  const src = await fsp.open(from, 'r');
  try {
    const st = await src.stat();
    assert.ok(offset + length <= st.size, `${from} has ${st.size} bytes, cannot cut [${offset}, ${offset + length})`);
    const dst = await fsp.open(to, 'wx');
    try {
      const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
      let done = 0;
      while (done < length) {
        const want = Math.min(buf.length, length - done);
        const { bytesRead } = await src.read(buf, 0, want, offset + done);
        assert.ok(bytesRead > 0, `short read of ${from} at ${offset + done}`);
        await dst.write(buf, 0, bytesRead, done);
        done += bytesRead;
      }
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/**
 * Cuts each blob's raw (uncompressed) data out of an `export --block` image: the device table slot
 * says it lives at mapped_blkaddr·4096 for blocks·4096 bytes. Returns the files, in blob-table
 * order (which is device-table order).
 */
export async function cutRawBlobs(image: string, blobs: readonly InspectedBlob[], dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of blobs) {
    assert.ok(b.mapped_blkaddr > 0 && b.blocks > 0, `blob ${b.index} has mapped_blkaddr ${b.mapped_blkaddr}, blocks ${b.blocks}`);
    const file = path.join(dir, `raw-blob-${b.index}`);
    await copyRange(image, file, b.mapped_blkaddr * BLOCK, b.blocks * BLOCK);
    out.push(file);
  }
  return out;
}

/** GNU tar flags that carry every xattr and the numeric owners. */
export const TAR_XATTRS = ['--xattrs', '--xattrs-include=*', '--numeric-owner'] as const;

/** Extracts `tarFile` (GNU tar, as root, keeping modes, owners and xattrs) into the new directory `dir`. */
export async function extractTar(tarFile: string, dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await runOk('tar', [...TAR_XATTRS, '--same-owner', '-xpf', tarFile, '-C', dir]);
}

/** Packs the directory `dir` as an OCI layer tar (GNU tar, pax format, all xattrs, numeric owners,
 * entries "./…"). GNU tar leaves sockets out ("socket ignored") and still exits 0. */
export async function packLayer(dir: string, tarFile: string): Promise<void> {
  await runOk('tar', [...TAR_XATTRS, '--format=pax', '-cf', tarFile, '-C', dir, '.']);
}

/** Formats a list of tree differences for an assertion message. */
export function diffReport(what: string, diffs: readonly string[]): string {
  return `${what}: ${diffs.length} difference(s)\n${diffs.join('\n')}`;
}
