/**
 * Image references: `[host[:port]/]repo[:tag][@digest]`, with Docker Hub normalisation
 * (`busybox` → `docker.io/library/busybox:latest`, API host `registry-1.docker.io`).
 * @module
 */
import { RegistryError } from './registry-error.js';

/** A parsed image reference. */
export interface ImageReference {
  /** Registry host as written (`docker.io` for Docker Hub), with port. */
  readonly host: string;
  /** Host the API is served from (`registry-1.docker.io` for docker.io). */
  readonly apiHost: string;
  /** Repository path, e.g. `library/busybox`. */
  readonly repo: string;
  /** Tag, undefined when only a digest was given. */
  readonly tag: string | undefined;
  /** `sha256:…` digest, when given. */
  readonly digest: string | undefined;
  /** The digest if any, else the tag: what to ask `/manifests/` for. */
  readonly reference: string;
}

const DOCKER_HUB = 'docker.io';
const REPO_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+$/;

/** True for a `sha256:<64 hex>` digest. */
export function isSha256Digest(d: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(d);
}

function bad(ref: string, why: string): RegistryError {
  return new RegistryError('ERR_BAD_REFERENCE', `Cannot parse image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Validate a repository path (`a/b/c`, lowercase components). */
export function checkRepo(repo: string, ref = repo): void {
  if (repo === '' || repo.length > 255) throw bad(ref, 'the repository name is empty or too long');
  for (const c of repo.split('/')) {
    if (!REPO_COMPONENT.test(c)) throw bad(ref, `repository component ${JSON.stringify(c)} must be lowercase letters and digits separated by ".", "_", "__" or "-"`);
  }
}

/** Parse an image reference, applying Docker Hub defaults. */
export function parseReference(ref: string): ImageReference {
  if (typeof ref !== 'string' || ref === '') throw bad(String(ref), 'it is empty');
  if (/\s/.test(ref)) throw bad(ref, 'it contains whitespace');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(ref, `digest ${JSON.stringify(digest)} is not algorithm:hex`);
    if (digest.startsWith('sha256:') && !isSha256Digest(digest)) throw bad(ref, 'a sha256 digest must have 64 lowercase hex digits');
  }
  let host = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      host = first;
      rest = rest.slice(slash + 1);
      if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(host)) throw bad(ref, `registry host ${JSON.stringify(host)} is not host[:port]`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref, `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with "." or "-"`);
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = DOCKER_HUB;
  let repo = rest;
  if (host === DOCKER_HUB && !repo.includes('/')) repo = `library/${repo}`;
  checkRepo(repo, ref);
  if (tag === undefined && digest === undefined) tag = 'latest';
  const apiHost = host === DOCKER_HUB ? 'registry-1.docker.io' : host;
  return { host, apiHost, repo, tag, digest, reference: digest ?? (tag as string) };
}

/** Format a reference back (`host/repo:tag@digest`). */
export function formatReference(r: ImageReference): string {
  return `${r.host}/${r.repo}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}
