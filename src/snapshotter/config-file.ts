/**
 * The snapshotter's `--config` file: nydus-snapshotter's own `config.toml` (version 1: `root`,
 * `address`, `daemon_mode`, `[daemon]` nydusd_config / nydusd_path / fs_driver /
 * recover_policy, `[log]` level, `[remote]` skip_ssl_verify), so that a node's existing file
 * works; or a JSON object of this snapshotter's keys. Settings of the TOML file that nydus-ts does
 * not have are listed in `notes`, not refused: the rest of the file still applies.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { UsageError } from '../util/errors.js';

/** What a config file sets (undefined: not set). */
export interface SnapshotterConfigFile {
  address?: string;
  root?: string;
  logLevel?: string;
  nydusdConfig?: string;
  nydusdPath?: string;
  daemonMode?: string;
  /** nydusd's fs_driver for the images ("fusedev" or "erofs"). */
  fsDriver?: 'fusedev' | 'erofs';
  plainHttp?: boolean;
  insecure?: boolean;
  /** Lines to log: settings that were mapped or left out. */
  notes: string[];
}

const JSON_KEYS = ['address', 'root', 'log_level', 'nydusd_config', 'nydusd_path', 'daemon_mode', 'plain_http', 'insecure', 'fs_driver'] as const;

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Read `path`: JSON when it parses as JSON, else nydus-snapshotter's TOML. */
export function readSnapshotterConfig(path: string): SnapshotterConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError('ERR_BAD_CONFIG', `Cannot read config ${path}: ${(e as Error).message}`);
  }
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new UsageError('ERR_BAD_CONFIG', `Cannot read config ${path}: ${(e as Error).message}`);
    }
    return fromJson(path, v);
  }
  let t: unknown;
  try {
    t = parseToml(text);
  } catch (e) {
    throw new UsageError('ERR_BAD_CONFIG', `Cannot read config ${path}: it is neither JSON nor valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  return fromToml(path, t as Table);
}

function fromJson(path: string, v: unknown): SnapshotterConfigFile {
  if (!isTable(v)) throw new UsageError('ERR_BAD_CONFIG', `Cannot use config ${path}: it must be a JSON object`);
  for (const k of Object.keys(v)) {
    if (!(JSON_KEYS as readonly string[]).includes(k)) throw new UsageError('ERR_BAD_CONFIG', `Cannot use config ${path}: unknown key "${k}" (known: ${JSON_KEYS.join(', ')})`);
  }
  const out: SnapshotterConfigFile = { notes: [] };
  const str = (k: string): string | undefined => typed(path, k, v[k], 'string');
  const bool = (k: string): boolean | undefined => typed(path, k, v[k], 'boolean');
  assign(out, {
    address: str('address'), root: str('root'), logLevel: str('log_level'), nydusdConfig: str('nydusd_config'),
    nydusdPath: str('nydusd_path'), daemonMode: str('daemon_mode'), fsDriver: fsDriverOf(path, 'fs_driver', str('fs_driver'), out.notes),
    plainHttp: bool('plain_http'), insecure: bool('insecure'),
  });
  return out;
}

function fromToml(path: string, t: Table): SnapshotterConfigFile {
  const out: SnapshotterConfigFile = { notes: [] };
  const used = new Set<string>();
  const get = (section: string, key: string): unknown => {
    const tab = section === '' ? t : t[section];
    used.add(section === '' ? key : `${section}.${key}`);
    return isTable(tab) ? tab[key] : undefined;
  };
  const str = (section: string, key: string): string | undefined => {
    const v = typed(path, section === '' ? key : `${section}.${key}`, get(section, key), 'string');
    return v === '' ? undefined : v;
  };
  const bool = (section: string, key: string): boolean | undefined => typed(path, section === '' ? key : `${section}.${key}`, get(section, key), 'boolean');
  get('', 'version');
  const daemonMode = str('', 'daemon_mode');
  if (daemonMode !== undefined && daemonMode !== 'shared') out.notes.push(`daemon_mode "${daemonMode}": nydus-ts always runs one shared nydusd for all images`);
  const recover = str('daemon', 'recover_policy');
  if (recover !== undefined && recover !== 'restart') out.notes.push(`daemon.recover_policy "${recover}": nydus-ts restarts a nydusd that died ("restart")`);
  assign(out, {
    root: str('', 'root'), address: str('', 'address'),
    nydusdConfig: str('daemon', 'nydusd_config'), nydusdPath: str('daemon', 'nydusd_path'),
    fsDriver: fsDriverOf(path, 'daemon.fs_driver', str('daemon', 'fs_driver'), out.notes),
    logLevel: str('log', 'level'), insecure: bool('remote', 'skip_ssl_verify'),
  });
  const ignored: string[] = [];
  const walk = (tab: Table, prefix: string): void => {
    for (const [k, v] of Object.entries(tab)) {
      const name = prefix === '' ? k : `${prefix}.${k}`;
      if (isTable(v)) walk(v, name);
      else if (!used.has(name)) ignored.push(name);
    }
  };
  walk(t, '');
  if (ignored.length > 0) out.notes.push(`settings nydus-ts does not use: ${ignored.join(', ')}`);
  return out;
}

function typed<T extends 'string' | 'boolean'>(path: string, key: string, v: unknown, type: T): (T extends 'string' ? string : boolean) | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== type) throw new UsageError('ERR_BAD_CONFIG', `Cannot use config ${path}: ${key} must be a ${type}`);
  return v as T extends 'string' ? string : boolean;
}

function fsDriverOf(path: string, key: string, v: string | undefined, notes: string[]): 'fusedev' | 'erofs' | undefined {
  if (v === undefined || v === 'fusedev' || v === 'erofs') return v;
  if (v === 'fscache') {
    notes.push(`${key} "fscache": this kernel path is served by nydusd's "erofs" driver (kernel EROFS over nydusd's blob files)`);
    return 'erofs';
  }
  throw new UsageError('ERR_BAD_CONFIG', `Cannot use config ${path}: ${key} "${v}" is not fusedev, fscache or erofs`);
}

/** Copy the defined values of `v` into `out` (exactOptionalPropertyTypes: no undefined members). */
function assign(out: SnapshotterConfigFile, v: { [K in keyof Omit<SnapshotterConfigFile, 'notes'>]: SnapshotterConfigFile[K] | undefined }): void {
  for (const [k, x] of Object.entries(v)) if (x !== undefined) (out as unknown as Table)[k] = x;
}
