import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress } from '../../src/cli/nydusify/progress.js';

function sink(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let s = '';
  const out = { isTTY, write: (x: string) => { s += x; return true; } } as unknown as NodeJS.WriteStream;
  return { out, text: () => s };
}

test('createProgress() writes plain lines when not on a terminal', () => {
  const { out, text } = sink(false);
  const p = createProgress(out);
  p({ kind: 'layer-start', detail: 'sha256:aa', bytes: 100 });
  p({ kind: 'layer-done', detail: 'sha256:aa -> sha256:bb', bytes: 80 });
  assert.deepEqual(text().trim().split('\n').map((l) => l.split(' ')[0]), ['layer-start', 'layer-done']);
  assert.ok(!text().includes('\r'));
});

test('createProgress() redraws one line with layers, bytes and ETA on a terminal', () => {
  const { out, text } = sink(true);
  const p = createProgress(out);
  p({ kind: 'layer-start', detail: 'sha256:aa', bytes: 2 ** 20 });
  p({ kind: 'layer-start', detail: 'sha256:cc', bytes: 2 ** 20 });
  p({ kind: 'layer-done', detail: 'sha256:aa -> sha256:bb', bytes: 1 });
  p({ kind: 'pushed', detail: 'sha256:bb', bytes: 2 ** 20 });
  assert.match(text(), /\r\x1b\[Klayers 1\/2 {2}1\.0 MiB\/2\.0 MiB .* ETA .* pushed 1\.0 MiB$/);
  p({ kind: 'done', detail: 'sha256:ff' });
  assert.match(text(), /done: 1 layers, 1\.0 MiB converted, 1\.0 MiB pushed in [\d.]+ s\n$/);
});
