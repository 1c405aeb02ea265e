/**
 * Whether a process runs, zombies excluded.
 * @module
 */
import { readFileSync } from 'node:fs';

/**
 * Whether process `pid` runs. A zombie does not: a process that is not our child stays a zombie
 * after it exits until its parent (or init) reaps it, and it serves nothing meanwhile.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}
