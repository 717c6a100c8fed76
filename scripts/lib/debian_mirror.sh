# Sourced by scripts that debootstrap a Debian 12 root: debian_mirror prints the mirror
# (DEBIAN_MIRROR if set, else the first one this machine's apt sources name).
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\)[[:space:]]\+bookworm[[:space:]].*/\2/p' \
                       /etc/apt/sources.list 2>/dev/null | head -n1)
  [ -n "$uri" ] || { echo "error: no Debian mirror found in the apt sources; set DEBIAN_MIRROR" >&2; return 1; }
  echo "$uri"
}
