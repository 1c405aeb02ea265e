#!/usr/bin/env bash
# The main job end to end on a fresh machine (as root): install what is needed, build a Nydus
# RAFS v6 image from a directory and from the same tree as an OCI layer (tar.gz), check it,
# print its statistics, export it as a raw EROFS disk, mount that with the kernel and compare
# the mounted tree with the source. Everything it mounts or creates is removed at the end.
#
# Usage: scripts/demo.sh [SOURCE_DIR]   (default: /usr/share/doc, present on every Debian)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

SRC=${1:-/usr/share/doc}
WORK=$(mktemp -d /tmp/nydus-demo.XXXXXX)
LOOP=""
NYDUSD_PID=""
cleanup() {
  if [[ -n "$NYDUSD_PID" ]]; then kill "$NYDUSD_PID" 2>/dev/null || true; wait "$NYDUSD_PID" 2>/dev/null || true; fi
  if mountpoint -q "$WORK/lazy" 2>/dev/null; then umount "$WORK/lazy"; fi
  if mountpoint -q "$WORK/mnt" 2>/dev/null; then umount "$WORK/mnt"; fi
  if [[ -n "$LOOP" ]]; then losetup -d "$LOOP" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

# Work on a private copy, so packages installed meanwhile cannot change the tree under the demo.
cp -a "$SRC" "$WORK/src"
SRC="$WORK/src"
IMG=bin/nydus-image

step "create: $SRC -> bootstrap + blob (zstd, blake3, 1 MiB chunks, ToC, inline meta)"
$IMG create --type dir-rafs --fs-version 6 --features blob-toc --blob-inline-meta \
  --bootstrap "$WORK/image.boot" --blob-dir "$WORK/blobs" "$SRC"

step "create from the same tree as an OCI layer (tar.gz, streamed)"
tar -cf - -C "$SRC" . | gzip -1 > "$WORK/layer.tar.gz"
$IMG create --type tar-rafs --bootstrap "$WORK/layer.boot" --blob-dir "$WORK/layer-blobs" "$WORK/layer.tar.gz"

step "check: validate the bootstrap and verify every chunk of the blob"
$IMG check --quiet --bootstrap "$WORK/image.boot" --blob-dir "$WORK/blobs"
$IMG check --quiet --bootstrap "$WORK/layer.boot" --blob-dir "$WORK/layer-blobs"

step "stat"
$IMG stat --bootstrap "$WORK/image.boot"

step "export --block: a raw EROFS disk image"
$IMG export --block --bootstrap "$WORK/image.boot" --blob-dir "$WORK/blobs" --output "$WORK/image.disk"

step "mount with the kernel (loop device, mount -t erofs) and compare with the source"
mkdir -p "$WORK/mnt"
LOOP=$(losetup -f --show -r "$WORK/image.disk")
mount -t erofs -o ro "$LOOP" "$WORK/mnt"
diff -r --no-dereference "$SRC" "$WORK/mnt" > "$WORK/diff.out" 2>&1 || true
if grep -v -E 'is a (fifo|socket|character special file|block special file) while file .* is a' "$WORK/diff.out" | grep -q .; then
  echo "DIFFERENCES between $SRC and the mounted image:" >&2
  cat "$WORK/diff.out" >&2
  exit 1
fi
echo "the kernel mount of the image equals $SRC ($(find "$WORK/mnt" | wc -l) entries)"
umount "$WORK/mnt"

step "nydusd: mount the image lazily over FUSE (localfs backend + blob cache) and read it on demand"
cat > "$WORK/nydusd.json" <<JSON
{"device": {"backend": {"type": "localfs", "config": {"dir": "$WORK/blobs"}},
            "cache": {"type": "blobcache", "config": {"work_dir": "$WORK/cache"}}},
 "mode": "direct", "digest_validate": true, "enable_xattr": true, "iostats_files": true, "access_pattern": true,
 "amplify_io": 1048576, "fs_prefetch": {"enable": false}}
JSON
mkdir -p "$WORK/lazy"
bin/nydusd --config "$WORK/nydusd.json" --bootstrap "$WORK/image.boot" --mountpoint "$WORK/lazy" \
  --apisock "$WORK/nydusd.sock" --log-level warn &
NYDUSD_PID=$!
for _ in $(seq 100); do mountpoint -q "$WORK/lazy" && break; sleep 0.1; done
FIRST=$(find "$WORK/lazy" -type f -print -quit)
echo "mounted; reading one file ($FIRST) fetched:"
cat "$FIRST" > /dev/null
bin/nydusctl --sock "$WORK/nydusd.sock" metrics backend | grep -E 'read_count|read_amount_total'
diff -r --no-dereference "$SRC" "$WORK/lazy" > "$WORK/diff2.out" 2>&1 || true
if grep -v -E 'is a (fifo|socket|character special file|block special file) while file .* is a' "$WORK/diff2.out" | grep -q .; then
  echo "DIFFERENCES between $SRC and the nydusd mount:" >&2
  cat "$WORK/diff2.out" >&2
  exit 1
fi
echo "the nydusd mount equals $SRC; after reading everything:"
bin/nydusctl --sock "$WORK/nydusd.sock" metrics backend | grep -E 'read_count|read_amount_total'
bin/nydusctl --sock "$WORK/nydusd.sock" metrics blobcache | grep -E '^(hits|misses)'
kill "$NYDUSD_PID"; wait "$NYDUSD_PID" || true; NYDUSD_PID=""

echo
echo "demo finished: image built, checked, exported, mounted by the kernel and served lazily by nydusd; everything cleaned up"
