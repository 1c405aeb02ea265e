// Shared launcher of the command-line tools: runs the compiled JavaScript in dist/ when it is
// newer than every file under src/ (npm run build), else the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Import the entry point `rel` (path under src/ without extension). */
export async function launch(rel) {
  let compiled = false;
  try {
    compiled = statSync(join(root, 'dist/.stamp')).mtimeMs >= newest(join(root, 'src'));
  } catch {
    compiled = false;
  }
  if (compiled && !process.env.NYDUS_TS_SOURCE) {
    await import(pathToFileURL(join(root, 'dist', `${rel}.js`)).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(join(root, 'src', `${rel}.ts`)).href);
  }
}
