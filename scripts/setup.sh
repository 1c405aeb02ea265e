#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, run as root.
# Installs the system tools the builder and its tests use, then the npm
# dependencies. Quick (no network) when everything is already present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages needed by the tests and helpers:
#   erofs-utils  mkfs.erofs / fsck.erofs / dump.erofs (reference tools)
#   attr         setfattr / getfattr (xattrs in test trees)
#   tar gzip zstd  layer tarballs
#   util-linux   losetup; mount  mount/umount; kmod  modprobe
#   e2fsprogs    mkfs.ext4 / debugfs; coreutils  mknod, mkfifo, truncate
#   docker-registry skopeo umoci  a real OCI registry, pushing/inspecting and building OCI images
#   apache2-utils  htpasswd (registry basic auth); openssl  self-signed certs (registry TLS)
#   nginx        caching proxy (with the slice module) in front of the registry
#   busybox-static  /bin/busybox for small runnable test rootfs; curl  the demo talks to the registry
#   containerd runc  run containers through the snapshotter; stargz-snapshotter  only for its
#                  `ctr-remote image rpull`, which passes layer labels to a remote snapshotter
#   strace       bench:startup lists the files its programs open (the transfer floor)
PKGS=(erofs-utils attr tar gzip zstd util-linux mount kmod e2fsprogs coreutils time
      docker-registry skopeo umoci apache2-utils nginx busybox-static openssl curl
      containerd runc stargz-snapshotter strace)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages ${missing[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The nginx and docker-registry packages ship system services. Tests start their own
  # instances (own config, own port, stopped by PID), so a system instance started by apt
  # would only hold ports 80/5000 and linger. A policy-rc.d usually blocks this, and
  # systemctl/service may not exist, so look for the processes themselves: kill only those
  # whose parent is init and that run the system configs, never a test's own instance.
  for pid in $(pgrep -x nginx || true) $(pgrep -f docker-registry || true) $(pgrep -x containerd || true); do
    [[ -r /proc/$pid/cmdline ]] || continue
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline")
    ppid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    [[ $ppid == 1 ]] || continue
    case "$cmd" in
      *docker-registry*/etc/docker/registry/config.yml*) ;;
      /usr/bin/containerd|/usr/bin/containerd\ ) ;;
      nginx:\ master*|*nginx\ -g*|*/usr/sbin/nginx) [[ $cmd == *" -c "* && $cmd != *"/etc/nginx/nginx.conf"* ]] && continue ;;
      *) continue ;;
    esac
    echo "setup: stopping system service process $pid started by apt ($cmd)"
    kill "$pid" 2>/dev/null || true
  done
else
  echo "setup: system packages present"
fi

# Kernel file systems used by the tests (built in on most kernels; modprobe
# only when absent, and do not fail if there are no modules to load).
for fs in erofs overlay; do
  if ! grep -qw "$fs" /proc/filesystems; then
    modprobe "$fs" 2>/dev/null || echo "setup: warning: kernel has no $fs support" >&2
  fi
done

# npm dependencies: only when node_modules is missing or older than the lockfile.
if [[ -f package-lock.json ]]; then
  if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
    echo "setup: npm ci"
    if ! npm ci --no-audit --no-fund --loglevel=error >/tmp/nydus-ts-npm-ci.log 2>&1; then
      # e.g. a lockfile that lacks other platforms' optional native packages:
      # fall back to npm install without rewriting package(-lock).json.
      echo "setup: npm ci failed (see /tmp/nydus-ts-npm-ci.log); trying npm install --no-save"
      npm install --no-audit --no-fund --no-save
    fi
    touch node_modules
  else
    echo "setup: node_modules up to date"
  fi
elif [[ ! -d node_modules || package.json -nt node_modules ]]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund
  touch node_modules
else
  echo "setup: node_modules up to date"
fi

# Compile to dist/ (the launchers in bin/ use it when it is newer than src/, else run the
# TypeScript through tsx).
echo "setup: npm run build"
npm run --silent build
