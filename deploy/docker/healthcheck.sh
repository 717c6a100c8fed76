#!/bin/bash
# Container HEALTHCHECK: GET /health on the server's port must answer 200. Uses bash's /dev/tcp
# so the image needs no HTTP client.
set -euo pipefail
port=${WGLLM_PORT:-8080}
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 2 status <&3
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "unhealthy: ${status:-no answer}" >&2; exit 1 ;;
esac
