import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { test } from 'node:test';
import { collect } from './helpers.js';

const DIR = '/work/shared/fixtures/nydus/tar';

test('all-entry-type.tar: every entry with its type, link target and content', async () => {
  const entries = await collect(createReadStream(`${DIR}/all-entry-type.tar`));
  assert.deepEqual(
    entries.map((e) => [e.path, e.type, e.linkname, e.size]),
    [
      ['tar', 'dir', '', 0],
      ['tar/dir1', 'dir', '', 0],
      ['tar/dir1/dir3', 'dir', '', 0],
      ['tar/dir1/dir3/hardlink1.txt', 'file', '', 15],
      ['tar/dir1/dir3/xfile.txt', 'hardlink', 'tar/dir1/dir3/hardlink1.txt', 0],
      ['tar/dir1/hardlink2.txt', 'hardlink', 'tar/dir1/dir3/hardlink1.txt', 0],
      ['tar/dir2', 'dir', '', 0],
      ['tar/dir2/hardlink3.txt', 'hardlink', 'tar/dir1/dir3/hardlink1.txt', 0],
      ['tar/dir2/symlink1.txt', 'symlink', '../dir1/dir3/file1.txt', 0],
    ],
  );
  const file = entries[3];
  assert.ok(file);
  assert.equal(file.content.length, 15);
  assert.equal(file.mode, 0o644);
  assert.equal(file.uname, 'root');
  assert.equal(file.mtime, Date.UTC(2022, 9, 12, 14, 20, 30) / 1000);
  assert.equal(file.mtimeNsec, 0);
  assert.equal(entries[0]?.mode, 0o755);
  assert.deepEqual(
    entries.map((e) => e.headerOffset),
    [0, 512, 1024, 1536, 2560, 3072, 3584, 4096, 4608],
  );
});

test('empty.tar (a zero-byte file) has no entries', async () => {
  assert.deepEqual(await collect(createReadStream(`${DIR}/empty.tar`)), []);
});
