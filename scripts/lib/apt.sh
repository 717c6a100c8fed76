# Sourced by the install scripts: ensure_packages PKG... installs the Debian
# packages that are missing (as root), or says which are missing.
# A name without :ARCH means the native architecture (or all): with a foreign architecture
# enabled (arm64, for the cross build) `dpkg -s NAME` is ambiguous once both are installed.
package_installed() {
  case $1 in
    *:*) dpkg-query -W -f='${db:Status-Abbrev}\n' "$1" 2>/dev/null | grep -q '^ii' ;;
    *) dpkg-query -W -f='${db:Status-Abbrev} ${Architecture}\n' "$1" 2>/dev/null |
         grep -Eq "^ii +($(dpkg --print-architecture)|all)\$" ;;
  esac
}

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    package_installed "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: packages missing (${missing[*]}); run as root or install them first" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
