#!/usr/bin/env bash
# Runs the built image and checks that it works, without a container runtime's namespaces
# (buildah run --isolation chroot): the binary starts as the non-root user, wgpu-native loads and
# reaches the Vulkan loader (which finds no driver: the image carries none, a GPU node mounts
# its own), `--backend auto` falls back to the CPU backend and generates tokens from a random
# model, the entrypoint refuses to start without WGLLM_MODEL, the libraries NVIDIA's Vulkan driver
# needs from the image are there, the binaries are stripped and no compiler is in the image. With
# --serve it also starts `wgllm serve` through the entrypoint and sends GET /health, the
# HEALTHCHECK script and POST /v1/completions.
# Needs root, buildah and readelf (binutils).
#   deploy/smoke-image.sh [--serve] [IMAGE]
set -euo pipefail

serve=0
if [ "${1:-}" = "--serve" ]; then serve=1; shift; fi
image=${1:-${WGLLM_IMAGE:-localhost/wgllm:latest}}
ctr=$(buildah from "$image")
# The server runs in a chroot as a grandchild of buildah: stop it by its command line too, or
# it would outlive the script (and keep its caller's pipes open).
cleanup() {
  if [ -n "${server_pid:-}" ]; then
    kill "$server_pid" 2>/dev/null || true
    pkill -TERM -f "wgllm serve .*--port ${port}( |$)" 2>/dev/null || true
  fi
  buildah rm "$ctr" >/dev/null
}
trap cleanup EXIT
in_image() { buildah run --isolation chroot --user 10001:10001 "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

[ "$(in_image "$ctr" -- id -u)" = 10001 ] || fail "not running as uid 10001"
in_image "$ctr" -- wgllm --version | grep -q '^wgllm ' || fail "wgllm --version"
# The loader's own error proves that wgpu-native found libvulkan.so.1 and called into it; with a
# GPU's ICD mounted (NVIDIA container toolkit) the same call lists the GPU. `wgllm devices` exits
# 1 without an adapter; the shell exits 0 because buildah run can lose the output of a failing
# command.
devices=$(in_image --env VK_LOADER_DEBUG=error "$ctr" -- sh -c 'wgllm devices 2>&1; exit 0')
grep -q '^WebGPU library: /opt/wgllm/wgpu/lib/libwgpu_native.so' <<<"$devices" || fail "wgpu-native not loaded: $devices"
grep -q 'vkCreateInstance: Found no drivers' <<<"$devices" || fail "Vulkan loader not reached: $devices"
out=$(in_image "$ctr" -- sh -c 'wgllm synth --preset tiny --type q8_0 --seed 1 /tmp/m.gguf >/dev/null &&
      wgllm run -m /tmp/m.gguf -p hello -n 8 --temp 0 -t 2 --backend auto --json 2>&1') || fail "wgllm run: $out"
grep -q '^backend: cpu' <<<"$out" || fail "--backend auto did not fall back to the CPU backend: $out"
[ "$(grep -c '"id"' <<<"$out")" = 8 ] || fail "expected 8 generated tokens, got: $out"
if in_image "$ctr" -- /usr/local/bin/wgllm-entrypoint >/dev/null 2>&1; then fail "entrypoint started without WGLLM_MODEL"; fi
if in_image --env WGLLM_PORT=1 "$ctr" -- /usr/local/bin/wgllm-healthcheck >/dev/null 2>&1; then
  fail "healthcheck passed with no server"
fi
command -v readelf >/dev/null || fail "readelf (binutils) is needed on the host"
root=$(buildah mount "$ctr")
for f in opt/wgllm/bin/wgllm opt/wgllm/wgpu/lib/libwgpu_native.so; do
  [ -f "$root/$f" ] || fail "/$f missing"
  if readelf -S "$root/$f" | grep -q '\.symtab'; then fail "/$f is not stripped"; fi
done
# The loader, and what NVIDIA's Vulkan driver (mounted by the container toolkit) needs beyond itself.
for f in libvulkan.so.1 libX11.so.6 libXext.so.6 libEGL.so.1 libGLdispatch.so.0 libgrpc.so.29 libprotobuf-c.so.1; do
  [ -e "$root/usr/lib/x86_64-linux-gnu/$f" ] || fail "$f missing"
done
for f in usr/bin/cc usr/bin/gcc usr/bin/cmake usr/include/stdio.h; do
  if [ -e "$root/$f" ]; then fail "/$f: build tools reached the image"; fi
done
echo "smoke: CLI checks passed"

if [ "$serve" = 1 ]; then
  port=${SMOKE_PORT:-18080}
  grpc_port=${SMOKE_GRPC_PORT:-18051}
  in_image "$ctr" -- wgllm synth --preset tiny --type q8_0 --seed 1 /var/lib/wgllm/m.gguf >/dev/null
  in_image --network host --env WGLLM_MODEL=/var/lib/wgllm/m.gguf --env WGLLM_PORT="$port" \
    --env WGLLM_GRPC_PORT="$grpc_port" \
    --env WGLLM_HOST=127.0.0.1 --env WGLLM_BACKEND=cpu "$ctr" -- /usr/local/bin/wgllm-entrypoint &
  server_pid=$!
  for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null || fail "GET /health"
  in_image --network host --env WGLLM_PORT="$port" "$ctr" -- /usr/local/bin/wgllm-healthcheck || fail "HEALTHCHECK"
  reply=$(curl -fsS "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
          -d '{"model":"m","prompt":"hello","max_tokens":4,"temperature":0}') || fail "POST /v1/completions"
  grep -q '"choices"' <<<"$reply" || fail "completion reply: $reply"
  (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null || fail "the gRPC port $grpc_port does not accept"
  echo "smoke: serve checks passed"
fi
