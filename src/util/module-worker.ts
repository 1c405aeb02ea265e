/**
 * Worker threads running one of this project's modules, from `dist/` (compiled) or, when the
 * caller itself runs from the TypeScript sources through tsx, from `src/`: the thread then
 * registers tsx's loader before it imports the module.
 * @module
 */
import { Worker } from 'node:worker_threads';

/** URL of module `name` (no extension) beside the module whose `import.meta.url` is `base`. */
export function siblingModuleUrl(base: string, name: string): URL {
  return new URL(base.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, base);
}

/** Start a worker thread running the module at `url`. */
export function startModuleWorker(url: URL): Worker {
  return url.pathname.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true })
    : new Worker(url);
}
