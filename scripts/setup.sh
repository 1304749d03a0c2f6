#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: .venv, packages, models, default index.
# Slow steps run once: the llama-cpp-python wheel and the models are cached under ~/.cache/rag,
# pip's downloads under ~/.cache/pip; a second run takes seconds.
#   scripts/setup.sh            set up for the chat (embedder + 1.5B generator)
#   scripts/setup.sh test       also the test-only models and a headless Chromium
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${RAG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rag}"
LLAMA=llama-cpp-python==0.3.36
# llama.cpp is compiled for this CPU (-march=native), so its wheel is cached per CPU feature set. AMX is left
# out: on some virtual machines (seen on Firecracker, Sapphire Rapids) the CPU lists AMX and the kernel grants
# it, yet the tile instructions fault and the first generation dies of SIGILL.
FLAGS=""
[ "$(uname -m)" = x86_64 ] && FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CPU=$( { grep -m1 '^flags' /proc/cpuinfo || uname -m; echo "$FLAGS"; } | sha256sum | cut -c1-12)
WHEELS="$CACHE/wheels/$CPU"
mkdir -p "$WHEELS"

[ -x .venv/bin/python ] || { echo "== creating .venv"; "${PYTHON:-python3}" -m venv .venv; }

if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
  echo "== building $LLAMA once (a few minutes on 2 cores); cached in $WHEELS"
  # --no-cache-dir: pip's own cache would hand back a build made with other flags
  CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" .venv/bin/pip wheel -q --no-cache-dir --no-deps -w "$WHEELS" "$LLAMA"
fi

EXTRAS=dev
[ "${1:-}" = "test" ] && EXTRAS=dev,scale  # the tests also cover the scale-out paths (Ray, ONNX/OpenVINO)
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-$CPU-$EXTRAS"
if [ ! -f "$stamp" ]; then
  echo "== installing packages"
  .venv/bin/pip install -q --find-links "$WHEELS" -e ".[$EXTRAS]"
  # the same version built for another CPU may be installed already: replace it with this CPU's build
  .venv/bin/pip install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-0.3.36-*.whl
  rm -f .venv/.installed-* && touch "$stamp"
fi

if [ "${1:-}" = "test" ]; then
  .venv/bin/rag models pull embeddinggemma-300m qwen2.5-coder-1.5b smollm2-135m
  if ! command -v chromium >/dev/null; then
    echo "== installing Debian's chromium for the browser test"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
  fi
else
  .venv/bin/rag models pull
fi
.venv/bin/rag index --quiet
