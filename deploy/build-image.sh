#!/usr/bin/env bash
# Builds the wgllm server image (deploy/Dockerfile) with buildah and prints its size.
#   deploy/build-image.sh
# Environment:
#   WGLLM_IMAGE    tag of the result (default localhost/wgllm:latest)
#   BASE_IMAGE     Debian 12 base image. Default: docker.io/library/debian:12-slim when it can be
#                  pulled; otherwise a local base, localhost/wgllm-base:bookworm, made once with
#                  debootstrap from the Debian mirror this machine's apt uses (DEBIAN_MIRROR
#                  overrides it) and imported with `podman import`.
#   BUILD_ISOLATION  buildah isolation (default chroot: works inside VMs and containers that
#                  cannot create user namespaces or set rlimits for an OCI runtime)
# Needs root, buildah, podman and (for the local base) debootstrap: scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${WGLLM_IMAGE:-localhost/wgllm:latest}
isolation=${BUILD_ISOLATION:-chroot}
local_base=localhost/wgllm-base:bookworm

for tool in buildah podman; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

. scripts/lib/debian_mirror.sh

make_local_base() {
  command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  local mirror work
  mirror=$(debian_mirror)
  work=$(mktemp -d /var/tmp/wgllm-base.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  echo "making $local_base with debootstrap (bookworm, minbase)"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # Slim like the official -slim images: no docs, manuals or translations, no apt caches.
  cat >"$work/rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
  find "$work/rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$work/rootfs/usr/share/man"/* "$work/rootfs/usr/share/info"/* "$work/rootfs/usr/share/locale"/* \
         "$work/rootfs/var/cache/apt"/*.bin "$work/rootfs/var/cache/apt/archives"/*.deb \
         "$work/rootfs/var/lib/apt/lists"/*_Packages "$work/rootfs/var/log"/*.log
  tar --numeric-owner -C "$work/rootfs" -c . |
    podman import --change 'CMD ["/bin/bash"]' - "$local_base" >/dev/null
}

if [ -z "${BASE_IMAGE:-}" ]; then
  if podman image exists docker.io/library/debian:12-slim ||
     timeout 60 podman pull -q docker.io/library/debian:12-slim >/dev/null 2>&1; then
    BASE_IMAGE=docker.io/library/debian:12-slim
  else
    podman image exists "$local_base" || make_local_base
    BASE_IMAGE=$local_base
  fi
fi
echo "base image: $BASE_IMAGE"

# wgpu-native goes into the image from .deps/wgpu (pinned and checksum-verified by this script).
scripts/install-webgpu.sh

# A clean build context: the repository's files (no build trees) plus .deps/wgpu.
ctx=$(mktemp -d /var/tmp/wgllm-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
git ls-files -z --cached --others --exclude-standard | grep -zv '^\.deps\(/\|$\)' |
  tar --null -T - -c | tar -C "$ctx" -x
mkdir -p "$ctx/.deps"
cp -rL .deps/wgpu "$ctx/.deps/wgpu"

start=$(date +%s)
buildah bud --isolation "$isolation" --layers --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f "$ctx/deploy/Dockerfile" -t "$image" "$ctx"
end=$(date +%s)
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "built $image in $((end - start)) s; size $size bytes ($((size / 1000000)) MB)"
