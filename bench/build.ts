/**
 * bench:build — build time of a Nydus image from a real tree's layer versus the standard OCI
 * layer export (`tar -c | gzip -6`) of the same tree, in the same run; output sizes; peak RSS of
 * a build from a ≥ 2 GiB layer.
 *
 * Usage: npm run bench:build [-- --source DIR] [-- --big-source DIR]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const CLI = resolve(import.meta.dirname, '../bin/nydus-image');
const { values } = parseArgs({ options: { source: { type: 'string', default: '/usr/share' }, 'big-source': { type: 'string', default: '/usr/lib' }, 'big-min-gib': { type: 'string', default: '2' } } });

/** Run a shell pipeline under GNU time; returns wall seconds and peak RSS (KiB) of the slowest member measured. */
function timed(cmd: string): { seconds: number; rssKiB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`Cannot run benchmark step: ${cmd}\n${r.stderr}`);
  const m = /RSS_KIB=(\d+)/.exec(r.stderr);
  return { seconds, rssKiB: m ? Number(m[1]) : 0 };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
  return total;
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
const work = mkdtempSync(join(tmpdir(), 'nydus-bench-'));
try {
  const src = values.source as string;
  const count = spawnSync('bash', ['-c', `find ${src} -xdev -type f | wc -l; du -sb --apparent-size ${src} | cut -f1`], { encoding: 'utf8' }).stdout.trim().split('\n');
  console.log(`source tree: ${src}: ${count[0]} files, ${mib(Number(count[1]))}`);
  // Warm the page cache so both sides read the tree from memory.
  timed(`tar -cf - -C / ${src.replace(/^\//, '')} > /dev/null`);

  const oci = timed(`tar -cf - -C / ${src.replace(/^\//, '')} | gzip -6 > ${work}/layer.tar.gz`);
  const ociSize = statSync(`${work}/layer.tar.gz`).size;
  const nydus = timed(`tar -cf - -C / ${src.replace(/^\//, '')} | /usr/bin/time -f RSS_KIB=%M ${CLI} create -t tar-rafs --blob-inline-meta --features blob-toc -B ${work}/n.boot -D ${work}/blobs /dev/stdin > /dev/null`);
  const nydusBlob = dirBytes(`${work}/blobs`);
  const nydusBoot = statSync(`${work}/n.boot`).size;
  const dir = timed(`/usr/bin/time -f RSS_KIB=%M ${CLI} create -t dir-rafs -B ${work}/d.boot -D ${work}/dblobs ${src} > /dev/null`);

  console.log('');
  console.log('step                                        time      output');
  console.log(`OCI layer export   tar -c | gzip -6        ${oci.seconds.toFixed(2).padStart(6)} s  ${mib(ociSize)}`);
  console.log(`Nydus build        tar -c | create tar-rafs ${nydus.seconds.toFixed(2).padStart(6)} s  blob ${mib(nydusBlob)} + bootstrap ${mib(nydusBoot)} (peak RSS ${mib(nydus.rssKiB * 1024)})`);
  console.log(`Nydus build        create dir-rafs          ${dir.seconds.toFixed(2).padStart(6)} s  (peak RSS ${mib(dir.rssKiB * 1024)})`);
  console.log(`ratio Nydus(tar-rafs)/OCI time: ${(nydus.seconds / oci.seconds).toFixed(3)}  (target <= 0.5)`);
  console.log(`ratio Nydus(dir-rafs)/OCI time: ${(dir.seconds / oci.seconds).toFixed(3)}`);
  rmSync(join(work, 'blobs'), { recursive: true, force: true });
  rmSync(join(work, 'dblobs'), { recursive: true, force: true });
  rmSync(join(work, 'layer.tar.gz'), { force: true });

  // Peak memory from a large real layer (default /usr/lib, about 3.9 GB and 59k files here), streamed
  // through a pipe: nothing of it is stored but the blob.
  const bigSrc = (values['big-source'] as string).replace(/^\//, '');
  const bigBytes = Number(spawnSync('bash', ['-c', `du -sb --apparent-size /${bigSrc} | cut -f1`], { encoding: 'utf8' }).stdout.trim());
  const bigFiles = spawnSync('bash', ['-c', `find /${bigSrc} -xdev -type f | wc -l`], { encoding: 'utf8' }).stdout.trim();
  const mem = timed(`tar -cf - -C / ${bigSrc} 2>/dev/null | /usr/bin/time -f RSS_KIB=%M ${CLI} create -t tar-rafs -B ${work}/b.boot -D ${work}/bblobs /dev/stdin > /dev/null`);
  console.log('');
  console.log(`large layer: tar of /${bigSrc} (${mib(bigBytes)}, ${bigFiles} files) streamed into create: ${mem.seconds.toFixed(2)} s, peak RSS ${mib(mem.rssKiB * 1024)} (target < 300 MiB for a >= 2 GiB layer)`);
  if (bigBytes < Number(values['big-min-gib']) * 2 ** 30) console.log(`note: /${bigSrc} is smaller than ${values['big-min-gib']} GiB on this machine; pass --big-source DIR`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
