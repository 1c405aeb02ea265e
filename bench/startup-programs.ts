/**
 * The real programs bench:startup starts in containers, each as one image layer holding the
 * program, every shared library it loads (from `ldd`), busybox-static for `sh`, and the small
 * input it works on:
 *  - tsc:    /usr/bin/node running this checkout's TypeScript compiler (node_modules/typescript,
 *            copied to /app/node_modules/typescript) on a project of a few .ts files (/app/proj);
 *            ready when tsc exits 0 and the emitted .js files are counted: `READY tsc <n>`.
 *  - python: pyenv's CPython 3.10 (/root/.pyenv/versions/3.10.13, at its own path so its prefix
 *            holds; its standard library without test/, site-packages, idlelib, tkinter, lib2to3,
 *            ensurepip, turtledemo and config-*) importing a broad set of standard modules
 *            (C extensions from lib-dynload and their libraries: ssl, sqlite3, lzma, ctypes, ...)
 *            and using a few: `READY python <modules>`.
 * Files are hard-linked from this machine where possible (copied otherwise).
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, runOk, REPO_ROOT } from '../test/helpers/mounts.js';
import { busyboxRootfs } from '../test/helpers/oci-image.js';

/** A program of bench:startup. */
export interface StartupProgram {
  name: 'tsc' | 'python';
  /** The image's command. */
  cmd: string[];
  /** Its ready line; group 1 is the program's name, group 2 a count that must equal `expect`. */
  ready: RegExp;
  expect: number;
  /** What it does, for the report. */
  what: string;
}

export const PROGRAM_NAMES = ['tsc', 'python'] as const;
export type ProgramName = typeof PROGRAM_NAMES[number];

const READY = /^READY (tsc|python) (\d+)$/m;
const APPLETS = ['sh', 'ls', 'wc', 'echo', 'cat', 'sleep'];
const PYENV = '/root/.pyenv/versions/3.10.13';
const PY_SKIP = new Set(['test', 'site-packages', 'idlelib', 'tkinter', 'lib2to3', 'ensurepip', 'turtledemo', 'config-3.10-x86_64-linux-gnu']);

/** Hard-link (or copy) host file `src` to `root/dst`. */
function place(root: string, dst: string, src: string): void {
  const to = path.join(root, dst);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.rmSync(to, { force: true });
  try { fs.linkSync(src, to); } catch { fs.copyFileSync(src, to); }
  fs.chmodSync(to, fs.statSync(src).mode & 0o7777);
}

/** Copy host tree `src` to `root/dst` (files hard-linked, symlinks kept); `skip` names entries of `src` itself to leave out. */
function placeTree(root: string, dst: string, src: string, hostFiles: Set<string>, skip: ReadonlySet<string> = new Set(), filter: (name: string) => boolean = () => true): void {
  fs.mkdirSync(path.join(root, dst), { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    if (skip.has(e.name) || !filter(e.name)) continue;
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) placeTree(root, d, s, hostFiles, new Set(), filter);
    else if (e.isSymbolicLink()) {
      fs.rmSync(path.join(root, d), { force: true });
      fs.symlinkSync(fs.readlinkSync(s), path.join(root, d));
    } else if (e.isFile()) {
      place(root, d, s);
      hostFiles.add(fs.realpathSync(s));
    }
  }
}

/** The shared libraries `ldd` lists for `bins` (paths as ldd names them), e.g. /lib/x86_64-linux-gnu/libc.so.6. */
async function libsOf(bins: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const b of bins) {
    const r = await run('ldd', [b]);
    if (r.code !== 0) throw new Error(`Cannot list the libraries of ${b}: ldd exited ${r.code}: ${r.stderr}`);
    for (const line of r.stdout.toString().split('\n')) {
      if (/not found/.test(line)) throw new Error(`Cannot build the program layer: ${b} needs a library this machine lacks: ${line.trim()}`);
      const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m?.[1]) out.add(m[1]);
    }
  }
  return [...out].sort();
}

const TS_FILES: Record<string, string> = {
  'tsconfig.json': JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'ES2022', moduleResolution: 'node', strict: true, outDir: '/tmp/out', types: [], lib: ['ES2022', 'DOM'], declaration: true, sourceMap: true },
    include: ['src/**/*.ts'],
  }, null, 2),
  'src/shape.ts': `export interface Point { readonly x: number; readonly y: number }
export abstract class Shape {
  constructor(public readonly name: string) {}
  abstract area(): number;
  abstract contains(p: Point): boolean;
  describe(): string { return \`\${this.name} with area \${this.area().toFixed(2)}\`; }
}
export class Circle extends Shape {
  constructor(private readonly c: Point, private readonly r: number) { super('circle'); }
  area(): number { return Math.PI * this.r ** 2; }
  contains(p: Point): boolean { return (p.x - this.c.x) ** 2 + (p.y - this.c.y) ** 2 <= this.r ** 2; }
}
export class Rect extends Shape {
  constructor(private readonly lo: Point, private readonly hi: Point) { super('rect'); }
  area(): number { return (this.hi.x - this.lo.x) * (this.hi.y - this.lo.y); }
  contains(p: Point): boolean { return p.x >= this.lo.x && p.x <= this.hi.x && p.y >= this.lo.y && p.y <= this.hi.y; }
}
`,
  'src/collections.ts': `export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}
  get(k: K): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) { this.map.delete(k); this.map.set(k, v); }
    return v;
  }
  set(k: K, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }
}
export type Grouped<T, K extends PropertyKey> = { [P in K]?: T[] };
export function groupBy<T, K extends PropertyKey>(xs: readonly T[], key: (x: T) => K): Grouped<T, K> {
  const out: Grouped<T, K> = {};
  for (const x of xs) (out[key(x)] ??= []).push(x);
  return out;
}
export async function* chunks<T>(xs: AsyncIterable<T>, n: number): AsyncGenerator<T[]> {
  let buf: T[] = [];
  for await (const x of xs) { buf.push(x); if (buf.length === n) { yield buf; buf = []; } }
  if (buf.length > 0) yield buf;
}
`,
  'src/events.ts': `type Handler<E> = (e: E) => void;
export class Emitter<Events extends Record<string, unknown>> {
  private readonly handlers: { [K in keyof Events]?: Array<Handler<Events[K]>> } = {};
  on<K extends keyof Events>(name: K, h: Handler<Events[K]>): () => void {
    (this.handlers[name] ??= []).push(h);
    return () => { this.handlers[name] = this.handlers[name]?.filter((x) => x !== h); };
  }
  emit<K extends keyof Events>(name: K, e: Events[K]): void { for (const h of this.handlers[name] ?? []) h(e); }
}
`,
  'src/main.ts': `import { Circle, Rect, type Shape } from './shape.js';
import { LruCache, groupBy } from './collections.js';
import { Emitter } from './events.js';
const shapes: Shape[] = [new Circle({ x: 0, y: 0 }, 2), new Rect({ x: 0, y: 0 }, { x: 3, y: 4 }), new Circle({ x: 1, y: 1 }, 0.5)];
const byName = groupBy(shapes, (s) => s.name);
const cache = new LruCache<string, number>(2);
const bus = new Emitter<{ area: { name: string; value: number } }>();
bus.on('area', ({ name, value }) => cache.set(name, value));
for (const s of shapes) bus.emit('area', { name: s.describe(), value: s.area() });
export const summary = Object.entries(byName).map(([k, v]) => \`\${k}: \${v?.length ?? 0}\`).join(', ');
`,
};

const TSC_RUN = `#!/bin/sh
/usr/bin/node /app/node_modules/typescript/lib/tsc.js -p /app/proj || exit 1
echo "READY tsc $(ls /tmp/out/*.js | wc -l)"
`;

/** Standard modules the python program imports (C extensions included). */
const PY_MODULES = [
  'abc', 'argparse', 'array', 'ast', 'asyncio', 'base64', 'binascii', 'bisect', 'bz2', 'calendar', 'cmath', 'collections',
  'concurrent.futures', 'configparser', 'contextlib', 'copy', 'csv', 'ctypes', 'dataclasses', 'datetime', 'decimal', 'difflib',
  'email', 'email.mime.text', 'enum', 'fnmatch', 'fractions', 'functools', 'gettext', 'glob', 'gzip', 'hashlib', 'heapq', 'hmac',
  'html', 'html.parser', 'http.client', 'http.server', 'inspect', 'io', 'ipaddress', 'itertools', 'json', 'locale', 'logging',
  'logging.handlers', 'lzma', 'math', 'mimetypes', 'multiprocessing', 'operator', 'pathlib', 'pickle', 'pprint', 'queue', 'random',
  're', 'secrets', 'select', 'shlex', 'shutil', 'signal', 'socket', 'sqlite3', 'ssl', 'statistics', 'string', 'struct',
  'subprocess', 'tarfile', 'tempfile', 'textwrap', 'threading', 'time', 'timeit', 'tokenize', 'traceback', 'typing', 'unicodedata',
  'unittest', 'urllib.parse', 'urllib.request', 'uuid', 'warnings', 'weakref', 'xml.dom.minidom', 'xml.etree.ElementTree',
  'xml.sax', 'zipfile', 'zlib', 'zoneinfo',
];

const PY_MAIN = `import importlib, sys
names = ${JSON.stringify(PY_MODULES)}
mods = [importlib.import_module(n) for n in names]
import json, re, sqlite3, hashlib, decimal, zlib, lzma, asyncio, xml.etree.ElementTree as ET, io, zipfile, ssl
db = sqlite3.connect(':memory:')
db.execute('create table t (k text, v real)')
db.executemany('insert into t values (?, ?)', [(str(i), i / 7) for i in range(500)])
total = db.execute('select sum(v) from t').fetchone()[0]
doc = json.dumps({'total': str(decimal.Decimal(total).quantize(decimal.Decimal('0.001'))), 'h': hashlib.sha256(b'x' * 4096).hexdigest()})
assert re.search(r'"total": "[0-9.]+"', doc)
assert lzma.decompress(lzma.compress(zlib.compress(doc.encode()))) == zlib.compress(doc.encode())
root = ET.fromstring('<a><b n="1"/><b n="2"/></a>')
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z: z.writestr('doc.json', doc)
async def twice(x):
    await asyncio.sleep(0)
    return 2 * x
assert asyncio.run(twice(len(root))) == 4
ssl.create_default_context
print('READY python', len(mods))
`;

const PY_RUN = `#!/bin/sh
exec ${PYENV}/bin/python3.10 -B /app/main.py
`;

/** A program's layer directory and the host files (real paths) it holds. */
export interface ProgramLayer { program: StartupProgram; dir: string; hostFiles: Set<string> }

/** Build the program's layer under `dir` (created). */
export async function buildProgramLayer(name: ProgramName, dir: string): Promise<ProgramLayer> {
  fs.rmSync(dir, { recursive: true, force: true });
  busyboxRootfs(dir, APPLETS);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  const hostFiles = new Set<string>();
  const app = path.join(dir, 'app');
  fs.mkdirSync(app, { recursive: true });
  if (name === 'tsc') {
    const node = fs.realpathSync('/usr/bin/node');
    place(dir, 'usr/bin/node', node);
    hostFiles.add(node);
    for (const lib of await libsOf([node])) {
      place(dir, lib, fs.realpathSync(lib));
      hostFiles.add(fs.realpathSync(lib));
    }
    const ts = path.join(REPO_ROOT, 'node_modules', 'typescript');
    if (!fs.existsSync(path.join(ts, 'lib', 'tsc.js'))) throw new Error(`Cannot build the tsc program: ${ts}/lib/tsc.js is missing (npm ci)`);
    placeTree(dir, 'app/node_modules/typescript', ts, hostFiles);
    for (const [f, text] of Object.entries(TS_FILES)) {
      fs.mkdirSync(path.dirname(path.join(app, 'proj', f)), { recursive: true });
      fs.writeFileSync(path.join(app, 'proj', f), text);
    }
    fs.writeFileSync(path.join(app, 'run.sh'), TSC_RUN, { mode: 0o755 });
    return { dir, hostFiles, program: { name, cmd: ['/app/run.sh'], ready: READY, expect: Object.keys(TS_FILES).length - 1, what: 'node + typescript/lib/tsc.js -p /app/proj (4 .ts files, emits .js/.d.ts/.map)' } };
  }
  const py = `${PYENV}/bin/python3.10`;
  if (!fs.existsSync(py)) throw new Error(`Cannot build the python program: ${py} is missing (pyenv 3.10.13)`);
  place(dir, py.slice(1), py);
  hostFiles.add(fs.realpathSync(py));
  const libdir = `${PYENV}/lib`;
  placeTree(dir, libdir.slice(1), libdir, hostFiles, new Set(['pkgconfig', 'python3.10']));
  placeTree(dir, `${libdir.slice(1)}/python3.10`, `${libdir}/python3.10`, hostFiles, PY_SKIP, (n) => !n.startsWith('_tkinter'));
  const dynload = `${libdir}/python3.10/lib-dynload`;
  const exts = fs.readdirSync(dynload).filter((f) => f.endsWith('.so') && !f.startsWith('_tkinter')).map((f) => path.join(dynload, f));
  for (const lib of await libsOf([py, ...exts])) {
    if (lib.startsWith(PYENV)) continue;
    place(dir, lib, fs.realpathSync(lib));
    hostFiles.add(fs.realpathSync(lib));
  }
  fs.writeFileSync(path.join(app, 'main.py'), PY_MAIN);
  fs.writeFileSync(path.join(app, 'run.sh'), PY_RUN, { mode: 0o755 });
  return { dir, hostFiles, program: { name, cmd: ['/app/run.sh'], ready: READY, expect: PY_MODULES.length, what: `CPython 3.10 importing ${PY_MODULES.length} standard modules, sqlite/json/lzma/zip/asyncio work` } };
}

/** What the program needs, measured on the host: its run time and the files it opens. */
export interface HostRun {
  /** Median wall time of 3 runs in a chroot of the layer, page cache warm (ms). */
  ms: number;
  /** Regular files of the layer it opened or executed (strace), and their bytes. */
  files: number;
  bytes: number;
}

/**
 * Run the program in a chroot of its layer directory: 3 timed runs (median), then one under
 * strace -f (open/openat/execve) for the files it needs.
 */
export async function hostRun(layer: ProgramLayer): Promise<HostRun> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = await run('chroot', [layer.dir, ...layer.program.cmd], { timeoutMs: 120_000 });
    times.push(performance.now() - t0);
    const m = layer.program.ready.exec(r.stdout.toString());
    if (r.code !== 0 || !m || Number(m[2]) !== layer.program.expect) throw new Error(`The ${layer.program.name} program does not run in a chroot of its layer (exit ${r.code}): ${r.stdout.toString().slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }
  fs.rmSync(path.join(layer.dir, 'tmp', 'out'), { recursive: true, force: true });
  const traceFile = path.join(path.dirname(layer.dir), `${layer.program.name}.strace`);
  await runOk('strace', ['-f', '-qq', '-e', 'trace=open,openat,execve', '-o', traceFile, 'chroot', layer.dir, ...layer.program.cmd], { timeoutMs: 300_000 });
  fs.rmSync(path.join(layer.dir, 'tmp', 'out'), { recursive: true, force: true });
  const seen = new Set<string>();
  let bytes = 0;
  for (const line of fs.readFileSync(traceFile, 'utf8').split('\n')) {
    const m = /(?:open|openat|execve)\((?:AT_FDCWD, )?"([^"]+)"/.exec(line);
    if (!m?.[1] || / = -1 /.test(line)) continue;
    const p = path.join(layer.dir, path.resolve('/', m[1]));
    if (seen.has(p)) continue;
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) continue;
      seen.add(p);
      bytes += st.size;
    } catch { /* created by the program */ }
  }
  fs.rmSync(traceFile, { force: true });
  times.sort((a, b) => a - b);
  return { ms: times[1] as number, files: seen.size, bytes };
}
