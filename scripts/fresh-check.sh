#!/usr/bin/env bash
# Runs the README's commands on a clean Debian 12: makes a bookworm root with debootstrap, clones
# the repository into it and runs, as root inside it, `scripts/setup.sh` then `./scripts/test.sh`.
#   scripts/fresh-check.sh [--keep] [REPO [REF]]
# REPO: git URL or path (default: this repository); REF: commit, branch or tag (default: HEAD, the
# committed state: uncommitted changes are not checked). The clone is made here with git (the root
# has no git, like a machine that got the sources some other way).
# Environment:
#   WGLLM_SHARED   reference data (default ../shared), mounted read-only at ../shared of the clone
#   FUZZ_SECONDS   passed to test.sh (seconds per fuzz target, default 60)
#   DEBIAN_MIRROR  mirror for debootstrap and apt (default: the one this machine's apt uses)
#   FRESH_DIR      folder for the root and the log (default: a new /var/tmp/wgllm-fresh.XXXXXX)
# --keep leaves the root in FRESH_DIR/root (build trees, venv) for a look; by default it is removed
# and only FRESH_DIR/fresh-check.log stays. Exit status: non-zero if either command fails.
# The root gets only what a machine on this network needs besides Debian itself: resolv.conf, this
# machine's local CA certificates (/usr/local/share/ca-certificates, e.g. a TLS proxy's), its
# /etc/pip.conf and proxy variables, if any. Needs root and debootstrap (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
. scripts/lib/debian_mirror.sh

keep=0
args=()
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $a" >&2; exit 2 ;;
    *) args+=("$a") ;;
  esac
done
[ "${#args[@]}" -le 2 ] || { echo "usage: scripts/fresh-check.sh [--keep] [REPO [REF]]" >&2; exit 2; }
repo=${args[0]:-$here}
ref=${args[1]:-}
if [ -z "$ref" ]; then
  if [ "$repo" = "$here" ]; then ref=$(git rev-parse HEAD); else ref=HEAD; fi
fi
shared=$(realpath "${WGLLM_SHARED:-$here/../shared}")
[ -d "$shared" ] || { echo "error: reference data folder $shared not found (set WGLLM_SHARED)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }

work=${FRESH_DIR:-$(mktemp -d /var/tmp/wgllm-fresh.XXXXXX)}
mkdir -p "$work"
root=$work/root
log=$work/fresh-check.log
[ ! -e "$root" ] || { echo "error: $root exists; remove it or set FRESH_DIR" >&2; exit 1; }
: >"$log"
say() { echo "$*" | tee -a "$log"; }

mounts=() # innermost last
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" 2>/dev/null || true
  done
  if [ "$keep" -eq 0 ] && [ -d "$root" ]; then
    if findmnt -rn -o TARGET | grep -q "^$root\(/\|$\)"; then
      echo "warning: mounts left under $root; not removing it" >&2
    else
      rm -rf --one-file-system "$root"
    fi
  fi
}
trap cleanup EXIT

mirror=$(debian_mirror)
say "fresh-check: $repo at $ref; Debian bookworm from $mirror; root $root; log $log"
t0=$(date +%s)
# minbase plus ca-certificates (a standard installation has it; pip and git need it for https).
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >>"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; exit 1; }
{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  case $mirror in */debian|*/debian/) echo "deb ${mirror%/}-security bookworm-security main" ;; esac
} >"$root/etc/apt/sources.list"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >>"$log" 2>&1
fi
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$root/etc/pip.conf"
say "debian root made in $(($(date +%s) - t0)) s"

# The README's layout: the clone, with the reference data at ../shared.
mkdir -p "$root/src/shared"
git clone -q "$repo" "$root/src/wgllm"
git -C "$root/src/wgllm" checkout -q "$ref"
say "cloned $(git -C "$root/src/wgllm" rev-parse HEAD)"

# The root on itself: "/" inside is then a mount point, as on a real machine (container tools
# such as podman remount it private and fail otherwise).
mount --bind "$root" "$root"; mounts+=("$root")
mount -t proc proc "$root/proc"; mounts+=("$root/proc")
mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"; mounts+=("$root/sys")
mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounts+=("$root/dev")
mount --bind "$shared" "$root/src/shared"; mounts+=("$root/src/shared")
mount -o remount,bind,ro "$root/src/shared"

envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb)
[ -z "${FUZZ_SECONDS:-}" ] || envs+=("FUZZ_SECONDS=$FUZZ_SECONDS")
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -z "${!v:-}" ] || envs+=("$v=${!v}")
done
run_step() { # name command
  local start rc
  start=$(date +%s)
  say "=== $1"
  set +e
  chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -c "cd /src/wgllm && $2" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  set -e
  say "=== $1: exit $rc after $(($(date +%s) - start)) s"
  return "$rc"
}

status=0
run_step "scripts/setup.sh" "scripts/setup.sh" || status=1
run_step "./scripts/test.sh" "./scripts/test.sh" || status=1

echo
echo "fresh-check results ($(($(date +%s) - t0)) s in all; log $log):"
grep -E '^=== .*: exit [0-9]+ after' "$log" || true
grep -E '^summary: ' "$log" | tail -n 1 || echo "no test summary (test.sh stopped early)"
[ "$keep" -eq 0 ] || echo "root kept in $root"
exit "$status"
