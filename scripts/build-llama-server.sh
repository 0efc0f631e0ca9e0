#!/usr/bin/env bash
# Build the real llama-server (CPU) from the llama.cpp source vendored in the
# llama-cpp-python sdist on PyPI. The result is cached per llama-cpp-python
# version, so a machine builds it once.
#
# usage: scripts/build-llama-server.sh [--wheelhouse DIR] [--prefix DIR]
#   --wheelhouse DIR  take the sdist from DIR (offline installs)
#   --prefix DIR      cache root (default: ${XDG_CACHE_HOME:-~/.cache}/cortex/llama-server)
# prints the path of the built binary on its last line.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
WHEELHOUSE=""
PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/cortex/llama-server"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheelhouse) WHEELHOUSE="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

DEST="$PREFIX/$LLAMA_CPP_PYTHON_VERSION"
if [[ -x "$DEST/bin/llama-server" ]]; then
  echo "llama-server $LLAMA_CPP_PYTHON_VERSION already built (cached)" >&2
  echo "$DEST/bin/llama-server"
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PY="${PYTHON:-python3}"
if [[ -n "$WHEELHOUSE" ]]; then
  "$PY" -m pip download --quiet --no-index --find-links "$WHEELHOUSE" --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$WORK"
else
  "$PY" -m pip download --quiet --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$WORK"
fi
tar -xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
SRC="$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)"

# Static, portable x86-64-v3 build: the binary is copied into engine images and
# bundles, so it must not depend on the build host's exact CPU or shared libs.
# Nothing may download at build time (no prebuilt web UI, no curl/openssl).
ARCH_FLAGS=()
if [[ "$(uname -m)" == "x86_64" ]]; then
  ARCH_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
fi
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DGGML_OPENMP=OFF "${ARCH_FLAGS[@]}" >&2
cmake --build "$WORK/build" --target llama-server -j"$(nproc)" >&2

mkdir -p "$DEST.tmp/bin"
cp "$WORK/build/bin/llama-server" "$DEST.tmp/bin/"
echo "$LLAMA_CPP_PYTHON_VERSION" > "$DEST.tmp/VERSION"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "$DEST/bin/llama-server"
