/**
 * Temporary names for outputs: write under `.NAME.tmp-PID-N` beside the target, rename when
 * complete, remove on failure, so no half-written output is ever left under the final name.
 * @module
 */
import { renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A temporary path in the same directory as `target`. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${counter++}`);
}

/** Tracks temporary files of one operation. */
export class TempFiles {
  #paths = new Set<string>();

  /** A new temporary path for `target`. */
  for(target: string): string {
    const p = tempPathFor(target);
    this.#paths.add(p);
    return p;
  }

  /** Move a temporary file to its final name. */
  commit(temp: string, target: string): void {
    renameSync(temp, target);
    this.#paths.delete(temp);
  }

  /** Forget a temporary file after removing it. */
  discard(temp: string): void {
    rmSync(temp, { force: true });
    this.#paths.delete(temp);
  }

  /** Remove every temporary file not committed. */
  cleanup(): void {
    for (const p of this.#paths) rmSync(p, { force: true });
    this.#paths.clear();
  }
}
