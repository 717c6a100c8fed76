"""Where the tests find llama.cpp's own tree (the pinned llama-cpp-python sdist's
vendor/llama.cpp, unpacked by scripts/fetch-llama-cpp.sh, which scripts/test.sh runs).

Environment:
  WGLLM_LLAMA_CPP_SRC  that vendor/llama.cpp folder (default: the one scripts/fetch-llama-cpp.sh unpacks)
"""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _version():
    text = (REPO / "tests" / "requirements-llama-cpp.txt").read_text()
    return re.search(r"^llama-cpp-python==([0-9.]+)", text, re.M).group(1)


def src_dir():
    """The vendor/llama.cpp folder; fails the test (never skips) when it is missing."""
    env = os.environ.get("WGLLM_LLAMA_CPP_SRC")
    path = Path(env) if env else REPO / ".deps" / f"llama-cpp-python-{_version()}" / "vendor" / "llama.cpp"
    if not (path / "convert_hf_to_gguf.py").is_file():
        pytest.fail(f"llama.cpp reference tree not found at {path}: run scripts/fetch-llama-cpp.sh")
    return path
