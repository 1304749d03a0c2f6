#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: .venv, packages, models, default index.
# Slow steps run once: the llama-cpp-python wheel and the models are cached under ~/.cache/rag,
# pip's downloads under ~/.cache/pip; a second run takes seconds.
#   scripts/setup.sh            set up for the chat (embedder + 1.5B generator)
#   scripts/setup.sh test       also the test-only models, the scale extra and a headless Chromium
# Each step's time is printed as it ends, and all of them in one line at the end (also written to the file
# named by $RAG_SETUP_TIMES, if set: make test repeats it in its own closing line).
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

TIMES=()  # "step Ns", in order
NOTE=""   # what a step did, when that is worth saying (e.g. built or cached)
step() {  # step NAME COMMAND...: run one set-up step, print and record how long it took
  local name=$1 start=$SECONDS
  shift
  NOTE=""
  "$@"
  TIMES+=("$name${NOTE:+ ($NOTE)} $((SECONDS - start))s")
  echo "== $name${NOTE:+ ($NOTE)}: $((SECONDS - start)) s"
}

make_venv() {
  if [ -x .venv/bin/python ]; then NOTE=exists; else "${PYTHON:-python3}" -m venv .venv; fi
}

build_llama() {
  if ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then NOTE=cached; return; fi
  NOTE=built
  echo "== building $LLAMA once (1.5 min on a 2-core Xeon, longer on older CPUs); cached in $WHEELS"
  # Only what the Python package loads (libllama, libggml*): LLAVA_BUILD=OFF leaves out the multimodal library
  # (mtmd), which only image and audio chat formats load, and scripts/llama-no-common.cmake the common library,
  # which llama-cpp-python builds but never loads. A wheel cached before either still has them, and works as well.
  # --no-cache-dir: pip's own cache would hand back a build made with other flags
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$PWD/scripts/llama-no-common.cmake" \
    CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" \
    .venv/bin/pip wheel -q --no-cache-dir --no-deps -w "$WHEELS" "$LLAMA"
}

EXTRAS=dev
[ "${1:-}" = "test" ] && EXTRAS=dev,scale  # the tests also cover the scale-out paths (Ray, ONNX/OpenVINO)
install_packages() {
  local stamp=".venv/.installed-$(sha256sum < pyproject.toml | cut -c1-16)-$CPU-$EXTRAS"
  if [ -f "$stamp" ]; then NOTE="up to date"; return; fi
  .venv/bin/pip install -q --find-links "$WHEELS" -e ".[$EXTRAS]"
  # the same version built for another CPU may be installed already: replace it with this CPU's build
  .venv/bin/pip install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-0.3.36-*.whl
  rm -f .venv/.installed-* && touch "$stamp"
}

install_chromium() {
  if command -v chromium >/dev/null; then NOTE=present; return; fi
  echo "== installing Debian's chromium for the browser test"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
}

step venv make_venv
step "llama wheel" build_llama
step packages install_packages
if [ "${1:-}" = "test" ]; then
  for model in embeddinggemma-300m qwen2.5-coder-1.5b smollm2-135m; do
    step "$model" .venv/bin/rag models pull "$model"
  done
  step chromium install_chromium
else
  step models .venv/bin/rag models pull  # the configured embedder and generator only
fi
step index .venv/bin/rag index --quiet  # the first run also exports the embedding model for its runtime

printf -v summary '%s, ' "${TIMES[@]}"
summary="set-up: ${summary%, }; total ${SECONDS}s"
echo "$summary"
[ -z "${RAG_SETUP_TIMES:-}" ] || echo "$summary" > "$RAG_SETUP_TIMES"
