/**
 * An ImageStore over an OCI image layout directory (`oci-layout`, `index.json`,
 * `blobs/sha256/…`), as umoci and `skopeo copy oci:DIR:TAG` read and write it.
 * @module
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FormatError, UsageError } from '../util/errors.js';
import { tempPathFor } from '../util/atomic-file.js';
import type { ImageStore, StoredManifest } from './image-store.js';
import { MEDIA_OCI_INDEX, type Descriptor, type ImageIndex } from './oci-types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

function splitDigest(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new FormatError('ERR_BAD_DIGEST', `Cannot use digest "${digest}": only sha256 digests are supported`);
  return m[1] as string;
}

/** Open (or create, for writing) the OCI layout at `dir`. */
export function openOciLayout(dir: string, options: { create?: boolean } = {}): ImageStore {
  if (!existsSync(join(dir, 'oci-layout'))) {
    if (!options.create) throw new UsageError('ERR_NO_IMAGE', `Cannot open OCI layout ${dir}: no oci-layout file`);
    mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests: [] }));
  }
  const blobPath = (digest: string): string => join(dir, 'blobs/sha256', splitDigest(digest));
  const readIndex = (): ImageIndex => JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  const writeAtomic = (path: string, data: Uint8Array | string): void => {
    const tmp = tempPathFor(path);
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  };
  return {
    name: `oci:${dir}`,
    location: { kind: 'oci', dir },
    async getManifest(reference) {
      let desc: Descriptor | undefined;
      const index = readIndex();
      if (reference.startsWith('sha256:')) desc = index.manifests.find((m) => m.digest === reference) ?? { mediaType: '', digest: reference, size: 0 };
      else desc = index.manifests.find((m) => m.annotations?.[REF_NAME] === reference) ?? (reference === '' && index.manifests.length === 1 ? index.manifests[0] : undefined);
      if (!desc) throw new UsageError('ERR_NO_IMAGE', `Cannot find image "${reference}" in OCI layout ${dir} (tags: ${index.manifests.map((m) => m.annotations?.[REF_NAME] ?? m.digest).join(', ') || 'none'})`);
      const data = readFileSync(blobPath(desc.digest));
      const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      if (got !== desc.digest) throw new FormatError('ERR_DIGEST_MISMATCH', `Cannot read manifest ${desc.digest} from ${dir}: its content hashes to ${got}`);
      const mediaType = desc.mediaType || (JSON.parse(data.toString('utf8')) as { mediaType?: string }).mediaType || '';
      const out: StoredManifest = { mediaType, digest: desc.digest, data };
      return out;
    },
    async *blobStream(desc) {
      const path = blobPath(desc.digest);
      const h = createHash('sha256');
      let n = 0;
      for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
        yield c as Buffer;
      }
      const got = `sha256:${h.digest('hex')}`;
      if (got !== desc.digest || (desc.size > 0 && n !== desc.size)) {
        throw new FormatError('ERR_DIGEST_MISMATCH', `Cannot use blob ${desc.digest} from ${dir}: it has ${n} bytes hashing to ${got}`);
      }
    },
    async hasBlob(digest) {
      return existsSync(blobPath(digest));
    },
    async putBlobFile(digest, size, path) {
      const target = blobPath(digest);
      if (existsSync(target) && statSync(target).size === size) return;
      const tmp = tempPathFor(target);
      copyFileSync(path, tmp);
      renameSync(tmp, target);
    },
    async putBlob(digest, data) {
      const target = blobPath(digest);
      if (!existsSync(target)) writeAtomic(target, data);
    },
    async putManifest(reference, mediaType, data) {
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      writeAtomic(blobPath(digest), data);
      if (reference.startsWith('sha256:')) return digest;
      const index = readIndex();
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== reference);
      index.manifests.push({ mediaType, digest, size: data.length, annotations: { [REF_NAME]: reference } });
      writeAtomic(join(dir, 'index.json'), JSON.stringify(index));
      return digest;
    },
  };
}
