/**
 * compareTrees(), the file system rule of `nydusify check`: equal trees give no lines; a lost or
 * changed hard link, content, mode or xattr gives one line naming the path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { compareTrees } from '../../src/nydusify/tree-compare.js';
import { cleanupTempDir, tempDir } from '../helpers/mounts.js';

function tree(root: string, o: { linked: boolean; content?: string; mode?: number; xattr?: string }): string {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bin/a'), o.content ?? 'binary\n');
  fs.chmodSync(path.join(root, 'bin/a'), o.mode ?? 0o755);
  if (o.linked) fs.linkSync(path.join(root, 'bin/a'), path.join(root, 'bin/b'));
  else fs.copyFileSync(path.join(root, 'bin/a'), path.join(root, 'bin/b'));
  fs.chmodSync(path.join(root, 'bin/b'), o.mode ?? 0o755);
  fs.writeFileSync(path.join(root, 'c'), 'c\n');
  if (o.xattr) execFileSync('setfattr', ['-n', 'user.k', '-v', o.xattr, path.join(root, 'c')]);
  return root;
}

test('compareTrees() finds equal trees equal and names each difference, hard links included', async () => {
  const work = await tempDir(undefined, 'tree-compare-');
  try {
    const src = tree(path.join(work, 'src'), { linked: true, xattr: 'v1' });
    const same = tree(path.join(work, 'same'), { linked: true, xattr: 'v1' });
    assert.deepEqual(await compareTrees(src, same), { entries: 4, diffs: [] });
    const unlinked = tree(path.join(work, 'unlinked'), { linked: false, xattr: 'v1' });
    assert.deepEqual((await compareTrees(src, unlinked)).diffs, ['/bin/b: a hard link of /bin/a in source, no hard link to an earlier path in target']);
    const other = tree(path.join(work, 'other'), { linked: true, content: 'binarY\n', mode: 0o700, xattr: 'v2' });
    const d = (await compareTrees(src, other)).diffs;
    assert.ok(d.some((l) => /^\/bin\/a: mode 0755 in source, 0700 in target$/.test(l)), d.join('\n'));
    assert.ok(d.some((l) => /^\/bin\/b: content sha256 [0-9a-f]{64} in source, [0-9a-f]{64} in target$/.test(l)), d.join('\n'));
    assert.ok(d.some((l) => l.startsWith('/c: xattrs {user.k=')), d.join('\n'));
  } finally {
    await cleanupTempDir(work);
  }
});
