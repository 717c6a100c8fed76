#!/bin/bash
# Starts `wgllm serve` with its flags taken from WGLLM_* environment variables; the container's
# arguments are appended to those flags. A first argument that is not a flag runs that command
# instead (e.g. `wgllm devices`), so the image also works as a plain CLI.
set -euo pipefail

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ -z "${WGLLM_MODEL:-}" ]; then
  echo "wgllm-entrypoint: error: WGLLM_MODEL is not set (path of the GGUF model inside the container)" >&2
  exit 2
fi

args=(serve -m "$WGLLM_MODEL")
# flag and variable; a variable that is unset or empty leaves the server's default.
flags=(
  --host WGLLM_HOST
  --port WGLLM_PORT
  --grpc-port WGLLM_GRPC_PORT
  --backend WGLLM_BACKEND
  --parallel WGLLM_PARALLEL
  --ctx WGLLM_CTX
  --max-queue WGLLM_MAX_QUEUE
  --drain-timeout WGLLM_DRAIN_TIMEOUT
  --model-cache WGLLM_MODEL_CACHE
  --api-key WGLLM_API_KEY
)
for ((i = 0; i < ${#flags[@]}; i += 2)); do
  value=${!flags[i + 1]:-}
  if [ -n "$value" ]; then
    args+=("${flags[i]}" "$value")
  fi
done
exec wgllm "${args[@]}" "$@"
