/**
 * CA certificates per registry host, where Docker and containerd keep them:
 * `/etc/docker/certs.d/<host[:port]>/*.crt` and `/etc/containerd/certs.d/<host[:port]>/*.crt`.
 * `NYDUS_CERTS_D` (directories separated by ":") replaces those two roots. The certificates are
 * trusted in addition to the usual roots, as Docker, containerd and nydusd do.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryError } from './registry-error.js';

const DEFAULT_CERTS_DIRS = ['/etc/docker/certs.d', '/etc/containerd/certs.d'];

/** The roots searched for `<host>/*.crt`. */
export function certsDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env['NYDUS_CERTS_D'];
  return v === undefined || v === '' ? DEFAULT_CERTS_DIRS : v.split(':').filter((d) => d !== '');
}

/** CA files for `host` (`name[:port]`, as in image references), sorted; none when there are none. */
export function hostCaFiles(host: string, dirs: readonly string[] = certsDirs()): string[] {
  const out: string[] = [];
  for (const root of dirs) {
    const dir = join(root, host);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) if (n.endsWith('.crt')) out.push(join(dir, n));
  }
  return out;
}

/** CA files of a registry named `host` in references and reached at `apiHost` (docker.io's differ). */
export function registryCaFiles(ref: { host: string; apiHost: string }, dirs: readonly string[] = certsDirs()): string[] {
  return [...new Set([...hostCaFiles(ref.host, dirs), ...hostCaFiles(ref.apiHost, dirs)])];
}

/** The PEM text of `files`, joined (throws naming the file that cannot be read). */
export function readCaFiles(files: readonly string[]): string {
  return files.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new RegistryError('ERR_REGISTRY_CA', `Cannot read the CA certificate ${f}: ${(e as Error).message}`);
    }
  }).join('\n');
}
