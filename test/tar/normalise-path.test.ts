import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseTarPath } from '../../src/tar/normalise-path.js';

test('normaliseTarPath resolves the root, dots, slashes and parent components lexically', () => {
  const cases: Array<[string, string]> = [
    ['', ''],
    ['.', ''],
    ['./', ''],
    ['/', ''],
    ['//', ''],
    ['..', ''],
    ['../', ''],
    ['./a', 'a'],
    ['a/', 'a'],
    ['a//b///c/', 'a/b/c'],
    ['./a/./b/.', 'a/b'],
    ['/abs/x', 'abs/x'],
    ['///abs//x', 'abs/x'],
    ['../../etc/passwd', 'etc/passwd'],
    ['a/../../b', 'b'],
    ['a/b/../c', 'a/c'],
    ['a/b/../../..', ''],
    ['./../a/../../b/./c/..', 'b'],
    ['.../a', '.../a'],
    ['..a/b..', '..a/b..'],
    ['a/.hidden', 'a/.hidden'],
    ['ünï/cødé', 'ünï/cødé'],
  ];
  for (const [input, expected] of cases) assert.equal(normaliseTarPath(input), expected, `normaliseTarPath(${JSON.stringify(input)})`);
});

test('normaliseTarPath never yields a path that escapes the root or is absolute', () => {
  const parts = ['..', '.', '', 'a', 'b', '/'];
  for (let n = 0; n < 6 ** 4; n++) {
    let p = '';
    for (let k = 0, m = n; k < 4; k++, m = Math.floor(m / 6)) p += (parts[m % 6] ?? '') + '/';
    const out = normaliseTarPath(p);
    assert.ok(!out.startsWith('/'), out);
    assert.ok(!out.split('/').some((c) => c === '..' || c === '.' || (c === '' && out !== '')), `${p} -> ${out}`);
    assert.equal(normaliseTarPath(out), out, 'idempotent');
  }
});
