#!/usr/bin/env bash
# Installs what is missing, builds wgllm, and generates text from a model:
#   scripts/setup.sh [MODEL.gguf] [PROMPT]
# Without a model it converts the small demo checkpoint from ../shared/models.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/install-webgpu.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWGLLM_GRPC=ON >/dev/null
cmake --build build -j"$(nproc)"

# The WebGPU library and adapters as wgllm sees them (the library's own version, not the wheel's).
echo "--- wgllm devices"
if ! build/wgllm devices 2>/dev/null | sed -n -e '1p' -e 's/^device /  device /p'; then
  echo "  no WebGPU adapter: wgllm runs on the CPU (see scripts/install-webgpu.sh)"
fi

model=${1:-}
prompt=${2:-Once upon a time}
if [ -z "$model" ]; then
  shared=${WGLLM_SHARED:-../shared}
  if [ -f "$shared/models/aidreams260K.bin" ] && [ -f "$shared/models/aidreams_tok512.bin" ]; then
    mkdir -p models
    model=models/aidreams260K.gguf
    build/wgllm convert llama2c "$shared/models/aidreams260K.bin" "$shared/models/aidreams_tok512.bin" "$model"
  else
    cat <<MSG
wgllm is built (build/wgllm) but no model was given and no demo checkpoint was found.
Get a Llama-family GGUF file (for example a Q4_0 or Q8_0 TinyLlama or Llama 2 GGUF from a model hub),
or a llama2.c checkpoint with its tokenizer.bin and convert it:
  build/wgllm convert llama2c model.bin tokenizer.bin model.gguf
then run: scripts/setup.sh model.gguf "Your prompt"
MSG
    exit 0
  fi
fi
echo "--- wgllm run -m $model -p \"$prompt\""
build/wgllm run -m "$model" -p "$prompt" -n 120 --temp 0.8 --seed 42
echo "--- next: build/wgllm chat -m $model, build/wgllm bench -m $model, build/wgllm --help"
