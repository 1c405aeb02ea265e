/**
 * Registry credentials from a Docker config file (`~/.docker/config.json`,
 * `$DOCKER_CONFIG/config.json`): `auths[host].auth` (base64 `user:pass`) or
 * `auths[host].username` / `password`. The caller supplies the path; nothing here reads the
 * environment.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryError } from './registry-error.js';

/** A user name and password. */
export interface Credentials {
  username: string;
  password: string;
}

/** Where the Docker config lives, for the CLI layer: `$DOCKER_CONFIG/config.json` or `<home>/.docker/config.json`. */
export function defaultDockerConfigPath(env: Record<string, string | undefined>, home: string): string {
  const d = env['DOCKER_CONFIG'];
  return d !== undefined && d !== '' ? join(d, 'config.json') : join(home, '.docker', 'config.json');
}

/** Decode base64 `user:pass`; undefined when it has no colon. */
export function decodeBasicAuth(b64: string): Credentials | undefined {
  const s = Buffer.from(b64, 'base64').toString('utf8');
  const i = s.indexOf(':');
  if (i < 0) return undefined;
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

/** Encode credentials as base64 `user:pass`. */
export function encodeBasicAuth(c: Credentials): string {
  return Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
}

/** Keys a host may be stored under in `auths`. */
function hostKeys(host: string): string[] {
  const keys = [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
  if (host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io') {
    keys.push('https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io');
  }
  return keys;
}

/** Credentials for `host` in the parsed Docker config, if any. */
export function credentialsFromDockerConfig(config: unknown, host: string): Credentials | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  const auths = (config as { auths?: unknown }).auths;
  if (auths === null || typeof auths !== 'object') return undefined;
  const table = auths as Record<string, unknown>;
  for (const k of hostKeys(host)) {
    const e = table[k];
    if (e === null || typeof e !== 'object') continue;
    const entry = e as { auth?: unknown; username?: unknown; password?: unknown };
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const c = decodeBasicAuth(entry.auth);
      if (c) return c;
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Read the Docker config at `dockerConfigPath` and return the credentials of `host`; a missing file means none. */
export async function loadCredentials(host: string, options: { dockerConfigPath: string }): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await readFile(options.dockerConfigPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RegistryError('ERR_BAD_DOCKER_CONFIG', `Cannot read credentials for ${host}: ${options.dockerConfigPath}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RegistryError('ERR_BAD_DOCKER_CONFIG', `Cannot read credentials for ${host}: ${options.dockerConfigPath} is not valid JSON`, { cause: e });
  }
  return credentialsFromDockerConfig(json, host);
}
