#!/bin/sh
# Builds the engine (GGUF reader, tokenizers, sampler, model, quant, CPU backend and the
# WebGPU backend over the page's navigator.gpu) for wasm32-wasi with Debian's toolchain:
#   apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 binaryen cmake
# Output: build-wasm/libwgllm_core.a, build-wasm/wgllm_probe.wasm (a WASI command) and
# build-wasm/local/ (the in-browser page with wgllm.js and wgllm.wasm, a static folder).
# WASM_WEBGPU=0 leaves the WebGPU backend out; with it, the modules import webgpu.h from
# the import module "webgpu" (wasm/webgpu.mjs) and export malloc, free and their function
# table, which that implementation needs. The headers are wgpu-native's (WGPU_DIR).
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
AR=${AR:-llvm-ar-14} # an archiver that indexes wasm objects (binutils' ar does not)
OUT=${OUT:-build-wasm}
WASI_INC=${WASI_INC:-/usr/include/wasm32-wasi}
WGPU_DIR=${WGPU_DIR:-.deps/wgpu}
mkdir -p "$OUT/obj"
# -nostdlibinc: Debian's clang also searches /usr/include (glibc's headers) for this
# target; only the compiler's own headers and wasi-libc's may be seen.
CFLAGS="--target=wasm32-wasi -nostdlibinc -isystem wasm/compat -isystem $WASI_INC
  -O2 -std=c11 -D_GNU_SOURCE -D_WASI_EMULATED_MMAN ${WASM_SIMD:--msimd128}
  -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Isrc"
SOURCES=$(ls src/gguf/gguf_format.c src/gguf/gguf_private.c src/gguf/gguf_read.c \
  src/tokenizer/*.c src/sampler/*.c src/model/*.c src/quant/*.c \
  src/backend/cpu/*.c src/backend/*.c src/util/*.c)
LDFLAGS=""
if [ "${WASM_WEBGPU:-1}" != 0 ]; then
  # The same WGSL files as the native build, embedded by the same step. Dawn's late-2024
  # adapter is left out: it binds a dlopen'ed library, which wasm has not.
  cmake -DKERNEL_DIR=kernels -DOUT="$OUT/wgsl_kernels.c" -P cmake/embed_wgsl.cmake
  for f in src/backend/webgpu/*.c; do
    [ "$f" = src/backend/webgpu/wgpu_dawn2024.c ] || SOURCES="$SOURCES $f"
  done
  SOURCES="$SOURCES $OUT/wgsl_kernels.c"
  CFLAGS="$CFLAGS -I$WGPU_DIR/include -DWGLLM_HAVE_WEBGPU=1 -DWGLLM_HAVE_WEBGPU_BACKEND=1"
  LDFLAGS="-Wl,--export=malloc -Wl,--export=free -Wl,--export-table"
fi
OBJS=""
for f in $SOURCES; do
  o="$OUT/obj/$(echo "$f" | tr / _).o"
  # shellcheck disable=SC2086
  $CC $CFLAGS -c "$f" -o "$o"
  OBJS="$OBJS $o"
done
rm -f "$OUT/libwgllm_core.a"
# shellcheck disable=SC2086
$AR rcs "$OUT/libwgllm_core.a" $OBJS
echo "built $OUT/libwgllm_core.a"
# shellcheck disable=SC2086
$CC $CFLAGS $LDFLAGS wasm/probe.c -o "$OUT/wgllm_probe.wasm" -L"$OUT" -lwgllm_core -lwasi-emulated-mman -lm
echo "built $OUT/wgllm_probe.wasm"
# the int8 kernel unit tests as WASI commands (tests/python/test_wasm_cpu.py runs them under Node)
for t in test_cpu_q8_dot test_cpu_q8_gemm test_cpu_q8k_dot test_cpu_q8k_x16; do
  # shellcheck disable=SC2086
  $CC $CFLAGS -Itests/unit "tests/unit/$t.c" -o "$OUT/$t.wasm" -L"$OUT" -lwgllm_core -lwasi-emulated-mman -lm
done
# The module for embedding (a reactor: no main, exports called by web/local/wgllm-worker.js),
# with its own mmap (wasm/mman.c) in place of wasi-emulated-mman, and the page around it.
# shellcheck disable=SC2086
$CC $CFLAGS $LDFLAGS -mexec-model=reactor -Iwasm wasm/wgllm_wasm.c wasm/mman.c src/server/chat_template.c \
  -o "$OUT/wgllm.wasm" -L"$OUT" -lwgllm_core -lm
mkdir -p "$OUT/local"
cp web/local/* wasm/wasi-mem.mjs "$OUT/wgllm.wasm" "$OUT/local/"
# the webgpu.h table in JavaScript, for a module built with the WebGPU backend
if [ -f wasm/webgpu.mjs ]; then cp wasm/webgpu.mjs "$OUT/local/"; fi
echo "built $OUT/wgllm.wasm and the page in $OUT/local/"
