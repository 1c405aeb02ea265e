/**
 * Registry credentials from a Docker config file (`~/.docker/config.json`,
 * `$DOCKER_CONFIG/config.json`), looked up as the Docker CLI does: a credential helper named for
 * the host in `credHelpers`, else the `credsStore` helper, else `auths[host].auth` (base64
 * `user:pass`) or `auths[host].username` / `password`. A helper is the program
 * `docker-credential-<name>` on PATH, asked with `get` and the server on stdin. The caller
 * supplies the config path; nothing here reads the environment but PATH.
 * @module
 */
import { execFile } from 'node:child_process';
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

/**
 * The credential helper the config names for `host`: its own (`credHelpers`, `explicit`), else
 * the default store (`credsStore`); undefined when there is none.
 */
export function credentialHelperFor(config: unknown, host: string): { helper: string; explicit: boolean } | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  const c = config as { credHelpers?: unknown; credsStore?: unknown };
  if (c.credHelpers !== null && typeof c.credHelpers === 'object') {
    const table = c.credHelpers as Record<string, unknown>;
    for (const k of hostKeys(host)) {
      const v = table[k];
      if (typeof v === 'string' && v !== '') return { helper: v, explicit: true };
    }
  }
  return typeof c.credsStore === 'string' && c.credsStore !== '' ? { helper: c.credsStore, explicit: false } : undefined;
}

/** The server name a helper is asked for: Docker Hub's legacy URL, else the host. */
function helperServer(host: string): string {
  return host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'https://index.docker.io/v1/' : host;
}

/**
 * Ask `docker-credential-<helper> get` for the credentials of `host`; undefined when it has
 * none. An identity token (user `<token>`) is refused: it needs an OAuth2 exchange this client
 * does not do.
 */
export function credentialsFromHelper(helper: string, host: string, timeoutMs = 10_000): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
    return Promise.reject(new RegistryError('ERR_CREDENTIAL_HELPER', `Cannot get credentials for ${host}: credential helper name ${JSON.stringify(helper)} is not a plain name`));
  }
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, ['get'], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const out = String(stdout).trim();
      if (err) {
        const text = `${out} ${String(stderr)}`.trim();
        if (/credentials not found/i.test(text)) { resolve(undefined); return; }
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it is not on PATH' : text !== '' ? text.split('\n')[0] : err.message;
        reject(new RegistryError('ERR_CREDENTIAL_HELPER', `Cannot get credentials for ${host} from ${program}: ${why}`, { cause: err }));
        return;
      }
      let json: { Username?: unknown; Secret?: unknown };
      try {
        json = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
      } catch (e) {
        reject(new RegistryError('ERR_CREDENTIAL_HELPER', `Cannot get credentials for ${host} from ${program}: its answer is not JSON`, { cause: e }));
        return;
      }
      if (typeof json.Username !== 'string' || typeof json.Secret !== 'string') {
        reject(new RegistryError('ERR_CREDENTIAL_HELPER', `Cannot get credentials for ${host} from ${program}: the answer has no Username and Secret`));
        return;
      }
      if (json.Username === '<token>') {
        reject(new RegistryError('ERR_CREDENTIAL_HELPER', `Cannot get credentials for ${host} from ${program}: it holds an identity token, which is not supported; log in with a user name and password`));
        return;
      }
      resolve({ username: json.Username, password: json.Secret });
    });
    // A helper that exits without reading its input must not crash us with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(helperServer(host));
  });
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
  const h = credentialHelperFor(json, host);
  if (h !== undefined) {
    try {
      const fromHelper = await credentialsFromHelper(h.helper, host);
      if (fromHelper) return fromHelper;
    } catch (e) {
      // A helper named for this host must work; the default store may be missing on this
      // machine (a config copied from a desktop): then the config's auths, as if it had none.
      if (h.explicit) throw e;
    }
  }
  return credentialsFromDockerConfig(json, host);
}
