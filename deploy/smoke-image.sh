#!/usr/bin/env bash
# Runs the built image and checks that it works, without a container runtime's namespaces
# (buildah run --isolation chroot): the binary starts as the non-root user, the Vulkan loader
# and Mesa's lavapipe ICD are found, a random model generates tokens, the entrypoint refuses to
# start without WGLLM_MODEL. With --serve it also starts `wgllm serve` through the entrypoint
# and sends GET /health, the HEALTHCHECK script and POST /v1/completions.
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
devices=$(in_image "$ctr" -- wgllm devices 2>&1) || fail "wgllm devices: $devices"
grep -q 'backend *vulkan' <<<"$devices" || fail "no Vulkan adapter (loader or ICD missing): $devices"
out=$(in_image "$ctr" -- sh -c 'wgllm synth --preset tiny --type q8_0 --seed 1 /tmp/m.gguf >/dev/null &&
      wgllm run -m /tmp/m.gguf -p hello -n 8 --temp 0 -t 2 --backend cpu --json' 2>/dev/null) || fail "wgllm run"
[ "$(grep -c '"id"' <<<"$out")" = 8 ] || fail "expected 8 generated tokens, got: $out"
if in_image "$ctr" -- /usr/local/bin/wgllm-entrypoint >/dev/null 2>&1; then fail "entrypoint started without WGLLM_MODEL"; fi
if in_image --env WGLLM_PORT=1 "$ctr" -- /usr/local/bin/wgllm-healthcheck >/dev/null 2>&1; then
  fail "healthcheck passed with no server"
fi
echo "smoke: CLI checks passed"

if [ "$serve" = 1 ]; then
  port=${SMOKE_PORT:-18080}
  in_image "$ctr" -- wgllm synth --preset tiny --type q8_0 --seed 1 /var/lib/wgllm/m.gguf >/dev/null
  in_image --network host --env WGLLM_MODEL=/var/lib/wgllm/m.gguf --env WGLLM_PORT="$port" \
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
  echo "smoke: serve checks passed"
fi
