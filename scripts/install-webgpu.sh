#!/usr/bin/env bash
# Installs what the WebGPU backend needs at run time, if missing:
#   - Mesa's Vulkan drivers (lavapipe, a CPU Vulkan device) and the Vulkan loader, from Debian,
#     so WebGPU also runs on a machine without a GPU;
#   - wgpu-native (prebuilt shared library + webgpu.h/wgpu.h) taken from the pinned `wgpu`
#     Python wheel, unpacked into .deps/wgpu/{lib,include/webgpu}.
# Python is only used here to fetch and unpack the wheel; wgllm loads the library with dlopen.
# Safe to run again: it does nothing when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

wgpu_version=0.32.0           # the `wgpu` Python wheel that carries the library
wgpu_native_version=29.0.1.1  # the wgpu-native release inside it (what `wgllm devices` reports)
dest=.deps/wgpu

# ---- Debian packages ----
. scripts/lib/apt.sh
ensure_packages mesa-vulkan-drivers libvulkan1

# ---- wgpu-native from the wheel ----
case "$(uname -m)" in
  x86_64)
    platform=manylinux_2_28_x86_64
    wheel_sha256=6499a31b5a29a10b4f1089fea4a0806411f42605fa86b6c0b543a07ca0de8568 ;;
  aarch64)
    platform=manylinux_2_28_aarch64
    wheel_sha256=00454ba1bc794d38c8365f4ad29f381b88ce0a7f115133bfaa6f1dfad7eb2764 ;;
  *)
    echo "error: no pinned wgpu-native build for $(uname -m); set WGLLM_WEBGPU_LIB to a webgpu.h library" >&2
    exit 1 ;;
esac
wheel=wgpu-${wgpu_version}-py3-none-${platform}.whl
stamp="wgpu ${wgpu_version} ${wheel_sha256}"

if [ -f "$dest/STAMP" ] && [ "$(cat "$dest/STAMP")" = "$stamp" ] &&
   [ -f "$dest/lib/libwgpu_native.so" ] && [ -f "$dest/include/webgpu/webgpu.h" ] &&
   [ -f "$dest/include/webgpu/wgpu.h" ]; then
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is needed to fetch wgpu-native (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pip only fetches the wheel. Use the system pip if there is one, else a throwaway venv
# (Debian ships pip inside python3-venv's ensurepip, not as `python3 -m pip`).
pip=(python3 -m pip)
if ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$tmp/venv"
  pip=("$tmp/venv/bin/python" -m pip)
fi
echo "fetching wgpu-native ${wgpu_native_version} (in the wgpu ${wgpu_version} Python wheel, $platform)"
"${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" "wgpu==${wgpu_version}" -d "$tmp/wheel"
if [ ! -f "$tmp/wheel/$wheel" ]; then
  echo "error: pip did not produce $wheel" >&2
  exit 1
fi
actual=$(sha256sum "$tmp/wheel/$wheel" | cut -d' ' -f1)
if [ "$actual" != "$wheel_sha256" ]; then
  echo "error: $wheel has sha256 $actual, expected $wheel_sha256" >&2
  exit 1
fi

# wgpu.h includes "webgpu.h" from its own folder; users include <webgpu/wgpu.h>.
mkdir -p "$tmp/out/lib" "$tmp/out/include/webgpu"
python3 - "$tmp/wheel/$wheel" "$tmp/out" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
members = {
    "wgpu/resources/libwgpu_native-release.so": "lib/libwgpu_native.so",
    "wgpu/resources/webgpu.h": "include/webgpu/webgpu.h",
    "wgpu/resources/wgpu.h": "include/webgpu/wgpu.h",
}
with zipfile.ZipFile(wheel) as z:
    for src, dst in members.items():
        with z.open(src) as f, open(f"{out}/{dst}", "wb") as g:
            g.write(f.read())
PY
chmod 0755 "$tmp/out/lib/libwgpu_native.so"
echo "$stamp" >"$tmp/out/STAMP"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "wgpu-native ${wgpu_native_version} installed in $dest"
