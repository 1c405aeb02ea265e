#!/usr/bin/env bash
# The main job end to end on a fresh machine (as root): install what is needed, build a Nydus
# RAFS v6 image from a directory and from the same tree as an OCI layer (tar.gz), check it,
# print its statistics, export it as a raw EROFS disk, mount that with the kernel and compare
# the mounted tree with the source; mount it lazily with nydusd; push an OCI image of the tree
# (busybox-static + the tree under /app) to a local registry, convert it with nydusify, compare
# the lazy cold start with the OCI pull; and finally run the converted image as a container:
# containerd with bin/nydus-snapshotter as its `nydus` proxy snapshotter, `ctr-remote image
# rpull` and `ctr run --snapshotter nydus`. Everything it starts, mounts or creates is stopped
# and removed at the end, also on failure.
#
# Usage: scripts/demo.sh [SOURCE_DIR]   (default: /usr/share/doc, present on every Debian)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

SRC=${1:-/usr/share/doc}
WORK=$(mktemp -d /tmp/nydus-demo.XXXXXX)
LOOP=""
NYDUSD_PID=""
REGISTRY_PID=""
CONTAINERD_PID=""
SNAPSHOTTER_PID=""
CSOCK="$WORK/containerd/containerd.sock"
SROOT="$WORK/snapshotter"

# PIDs whose command line has the argument $1 (exactly): this demo's containerd shims.
pids_with_arg() {
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' < "$p/cmdline" 2>/dev/null | grep -qxF -- "$1"; then echo "${p#/proc/}"; fi
  done
}

# Wait up to $2 tenths of a second for PID $1 (not necessarily a child) to be gone.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

cleanup_containers() {
  if [[ -n "$CONTAINERD_PID" ]]; then
    # A container left by a failure: kill its task and remove it through containerd.
    for c in $(ctr -a "$CSOCK" containers ls -q 2>/dev/null); do
      ctr -a "$CSOCK" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
      for _ in $(seq 20); do ctr -a "$CSOCK" tasks delete "$c" >/dev/null 2>&1 && break; sleep 0.1; done
      ctr -a "$CSOCK" containers rm "$c" >/dev/null 2>&1 || true
    done
    kill "$CONTAINERD_PID" 2>/dev/null || true; wait "$CONTAINERD_PID" 2>/dev/null || true
  fi
  # Shims of this containerd outlive it; they and their children are ours.
  for shim in $(pids_with_arg "$CSOCK"); do
    for p in $(pgrep -P "$shim") "$shim"; do kill -KILL "$p" 2>/dev/null || true; done
    wait_gone "$shim" 50 || true
  done
  if [[ -n "$SNAPSHOTTER_PID" ]]; then kill "$SNAPSHOTTER_PID" 2>/dev/null || true; wait "$SNAPSHOTTER_PID" 2>/dev/null || true; fi
  # The snapshotter's shared nydusd runs detached (it outlives the snapshotter by design): stop it by its PID file.
  if [[ -s "$SROOT/nydusd/nydusd.pid" ]]; then
    local npid
    npid=$(cat "$SROOT/nydusd/nydusd.pid")
    if tr '\0' '\n' < "/proc/$npid/cmdline" 2>/dev/null | grep -qxF -- "$SROOT/nydusd/api.sock"; then
      kill "$npid" 2>/dev/null || true
      wait_gone "$npid" 100 || kill -KILL "$npid" 2>/dev/null || true
    fi
  fi
  CONTAINERD_PID=""
  SNAPSHOTTER_PID=""
  # Whatever is still mounted under containerd's and the snapshotter's dirs (container rootfs, image mounts), newest first.
  awk -v c="$WORK/containerd/" -v s="$SROOT/" 'index($5, c) == 1 || index($5, s) == 1 { print $5 }' /proc/self/mountinfo | tac | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

cleanup() {
  cleanup_containers
  if [[ -n "$REGISTRY_PID" ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  if mountpoint -q "$WORK/lazy2" 2>/dev/null; then umount "$WORK/lazy2"; fi
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

step "registry: a local registry, an OCI image of the same tree pushed to it, converted to Nydus by nydusify"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
mkdir -p "$WORK/registry"
cat > "$WORK/registry/config.yml" <<YML
version: 0.1
log: {level: error, formatter: text}
storage: {filesystem: {rootdirectory: $WORK/registry/data}, delete: {enabled: true}}
http: {addr: $REG}
health: {storagedriver: {enabled: false}}
YML
docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -sf "http://$REG/v2/" > /dev/null && break; sleep 0.1; done
# Runnable: a busybox-static layer (/bin/busybox + applets, /bin/hello.sh) below the tree at /app.
mkdir -p "$WORK/base/bin"
cp /bin/busybox "$WORK/base/bin/busybox"
for a in sh cat echo find head sort wc; do ln -s busybox "$WORK/base/bin/$a"; done
cat > "$WORK/base/bin/hello.sh" <<'SH'
#!/bin/sh
echo "hello from a Nydus container: $(find /app -type f | wc -l) files under /app"
f=$(find /app -type f -name copyright | sort | head -n 1)
[ -n "$f" ] || f=$(find /app -type f | sort | head -n 1)
echo "first lines of $f:"
head -n 3 "$f"
SH
chmod 0755 "$WORK/base/bin/hello.sh"
umoci init --layout "$WORK/oci" > /dev/null
umoci new --image "$WORK/oci:demo"
tar --numeric-owner -C "$WORK/base" -cf "$WORK/layer.tar" bin
umoci raw add-layer --image "$WORK/oci:demo" "$WORK/layer.tar"
# The tree as /app: ./x becomes app/x (member and hard-link names; symbolic link targets stay as they are).
tar --numeric-owner -C "$SRC" --transform 's,^\.,app,S' -cf "$WORK/layer.tar" .
umoci raw add-layer --image "$WORK/oci:demo" "$WORK/layer.tar"
umoci config --image "$WORK/oci:demo" --os linux --architecture amd64 --config.cmd /bin/hello.sh
skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:demo" "docker://$REG/demo/app:oci"
bin/nydusify convert --plain-http --source "$REG/demo/app:oci" --target "$REG/demo/app:nydus" --work-dir "$WORK/nydusify" | tail -1

step "cold start from the registry: OCI (pull + unpack everything) vs Nydus (bootstrap + lazy reads) for the same files"
(cd "$SRC" && find . -type f | sort | awk 'NR % 20 == 1 && n++ < 50') > "$WORK/startup.list"
T0=$(date +%s.%N)
skopeo copy -q --src-tls-verify=false "docker://$REG/demo/app:oci" "oci:$WORK/pulled:x"
mkdir -p "$WORK/unpacked"
for L in $(python3 -c "import json,sys; m=json.load(open('$WORK/pulled/blobs/sha256/'+json.load(open('$WORK/pulled/index.json'))['manifests'][0]['digest'][7:])); print(' '.join(l['digest'][7:] for l in m['layers']))"); do
  tar -xzf "$WORK/pulled/blobs/sha256/$L" -C "$WORK/unpacked"
done
(cd "$WORK/unpacked/app" && xargs -d '\n' cat < "$WORK/startup.list" > /dev/null)
T1=$(date +%s.%N)
OCI_BYTES=$(du -sb "$WORK/pulled/blobs" | cut -f1)
BOOT=$(python3 - "$REG" <<PY
import json, sys, urllib.request
reg = sys.argv[1]
req = urllib.request.Request(f"http://{reg}/v2/demo/app/manifests/nydus", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
m = json.load(urllib.request.urlopen(req))
print(m["layers"][-1]["digest"])
PY
)
T2=$(date +%s.%N)
mkdir -p "$WORK/boot" "$WORK/lazy2"
curl -sf "http://$REG/v2/demo/app/blobs/$BOOT" | tar -xz -C "$WORK/boot"
cat > "$WORK/registry.json" <<JSON
{"device": {"backend": {"type": "registry", "config": {"scheme": "http", "host": "$REG", "repo": "demo/app"}},
            "cache": {"type": "blobcache", "config": {"work_dir": "$WORK/cache2"}}},
 "mode": "direct", "digest_validate": true, "enable_xattr": true, "amplify_io": 1048576}
JSON
bin/nydusd --config "$WORK/registry.json" --bootstrap "$WORK/boot/image/image.boot" --mountpoint "$WORK/lazy2" \
  --apisock "$WORK/nydusd2.sock" --log-level warn &
NYDUSD_PID=$!
for _ in $(seq 100); do mountpoint -q "$WORK/lazy2" && break; sleep 0.05; done
(cd "$WORK/lazy2/app" && xargs -d '\n' cat < "$WORK/startup.list" > /dev/null)
T3=$(date +%s.%N)
NYDUS_BYTES=$(bin/nydusctl --sock "$WORK/nydusd2.sock" --raw metrics backend | python3 -c "import json,sys; print(json.load(sys.stdin)['read_amount_total'])")
READ_BYTES=$(cd "$SRC" && xargs -d '\n' cat < "$WORK/startup.list" | wc -c)
python3 - "$T0" "$T1" "$T2" "$T3" "$OCI_BYTES" "$NYDUS_BYTES" "$READ_BYTES" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5]); oci, nyd, read = map(int, sys.argv[5:8])
print(f"start-up set: {read} bytes in 50 files of the image")
print(f"OCI   pull + unpack + read: {t1 - t0:6.2f} s, {oci} bytes fetched")
print(f"Nydus mount + lazy read:    {t3 - t2:6.2f} s, {nyd} bytes fetched (+ the bootstrap layer)")
print(f"Nydus is {(t1 - t0) / max(t3 - t2, 1e-6):.1f}x faster to the start-up set and fetched {nyd / max(oci, 1):.1%} of the bytes")
PY
kill "$NYDUSD_PID"; wait "$NYDUSD_PID" || true; NYDUSD_PID=""

step "containerd + nydus-snapshotter: pull the converted image without its layers and run it with ctr run"
mkdir -p "$WORK/containerd/root" "$WORK/containerd/state" "$WORK/containerd/runc" "$WORK/containerd/opt"
cat > "$WORK/containerd/config.toml" <<TOML
version = 2
root = "$WORK/containerd/root"
state = "$WORK/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$WORK/containerd/opt"
[proxy_plugins]
  [proxy_plugins.nydus]
    type = "snapshot"
    address = "$WORK/snapshotter.sock"
TOML
bin/nydus-snapshotter --root "$SROOT" --address "$WORK/snapshotter.sock" --plain-http --log-level info 2> "$WORK/snapshotter.log" &
SNAPSHOTTER_PID=$!
containerd --config "$WORK/containerd/config.toml" > "$WORK/containerd/log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 300); do grep -q 'snapshotter serving' "$WORK/snapshotter.log" && break; sleep 0.1; done
grep -q 'snapshotter serving' "$WORK/snapshotter.log" || { echo "nydus-snapshotter did not start:" >&2; cat "$WORK/snapshotter.log" >&2; exit 1; }
for _ in $(seq 200); do ctr -a "$CSOCK" version > /dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$CSOCK" version > /dev/null || { echo "containerd did not start:" >&2; tail -20 "$WORK/containerd/log" >&2; exit 1; }
echo "containerd (pid $CONTAINERD_PID) with nydus-snapshotter (pid $SNAPSHOTTER_PID) as proxy snapshotter \"nydus\", both in $WORK"
T4=$(date +%s.%N)
ctr-remote -a "$CSOCK" image rpull --plain-http --snapshotter nydus "$REG/demo/app:nydus" > "$WORK/rpull.log"
T5=$(date +%s.%N)
echo "ctr-remote image rpull: containerd's content store holds $(ctr -a "$CSOCK" content ls -q | wc -l) blobs (manifest and config; the layers stay in the registry)"
ctr -a "$CSOCK" run --rm --runc-root "$WORK/containerd/runc" --snapshotter nydus "$REG/demo/app:nydus" demo > "$WORK/container.out"
T6=$(date +%s.%N)
echo "ctr run --rm --snapshotter nydus $REG/demo/app:nydus demo   (the image's command /bin/hello.sh) printed:"
sed 's/^/  | /' "$WORK/container.out"
F=$(sed -n 's,^first lines of /app/\(.*\):$,\1,p' "$WORK/container.out")
if [[ -z "$F" ]] || ! diff <(head -n 3 "$SRC/$F") <(tail -n +3 "$WORK/container.out") > /dev/null; then
  echo "the container did not print the first lines of $SRC/$F" >&2
  exit 1
fi
BLOB_BYTES=$(python3 - "$REG" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"http://{sys.argv[1]}/v2/demo/app/manifests/nydus", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
print(sum(l["size"] for l in json.load(urllib.request.urlopen(req))["layers"][:-1]))
PY
)
echo "the container printed the same lines as $SRC/$F"
echo "nydusd's blob cache holds $(du -sk "$SROOT/cache" | cut -f1) KiB on disk; the image's blobs are $((BLOB_BYTES / 1024)) KiB"
python3 - "$T4" "$T5" "$T6" <<'PY'
import sys
t4, t5, t6 = map(float, sys.argv[1:4])
print(f"rpull {t5 - t4:.2f} s + ctr run (snapshot, nydusd start and mount, container start, lazy reads, exit) {t6 - t5:.2f} s"
      f" = {t6 - t4:.2f} s from nothing local to the container's output")
PY
cleanup_containers
echo "containerd, its shims, nydus-snapshotter and its nydusd stopped; nothing left mounted under $WORK/containerd or $SROOT"

echo
echo "demo finished: image built, checked, exported, mounted by the kernel, served lazily by nydusd, converted through a registry, started lazily from it and run as a container by containerd through nydus-snapshotter; everything cleaned up"
