#!/usr/bin/env bash
# Build the llama.cpp CPU engine image locally, without pulling anything (idempotent).
#
# A tiny rootfs holds the llama-server binary plus the shared libraries `ldd`
# lists; `docker import` turns it into a base image, and a Dockerfile on top adds
# the entrypoint. Skips when the tag already exists (the image is cached by dockerd).
#
# usage: scripts/build-engine-image.sh [--bin PATH] [--tag TAG] [--force]
#   --bin  llama-server to package (default: the one scripts/build-llama-server.sh built)
#   --tag  image tag (default: cortex/llamacpp-cpu:<llama-cpp-python version>)
# prints the image tag on its last line.
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
BIN="${XDG_CACHE_HOME:-$HOME/.cache}/cortex/llama-server/$VERSION/bin/llama-server"
TAG="cortex/llamacpp-cpu:$VERSION"
FORCE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) BIN="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ "$FORCE" == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "image $TAG already present" >&2
  echo "$TAG"
  exit 0
fi
if [[ ! -x "$BIN" ]]; then
  echo "llama-server not found at $BIN: run scripts/build-llama-server.sh first" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
mkdir -p "$ROOT"/{tmp,etc,models,templates,usr/local/bin}
chmod 1777 "$ROOT/tmp"
# Every library the dynamic loader will ask for, the loader itself included.
for lib in $(ldd "$BIN" | grep -o '/[^ ]*' | sort -u); do
  cp --parents -L "$lib" "$ROOT/"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"

BASE="${TAG%%:*}-rootfs:${TAG##*:}"
tar -C "$ROOT" -c . | docker import - "$BASE" >&2

mkdir -p "$WORK/ctx"
cp -L "$BIN" "$WORK/ctx/llama-server"
cat >"$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY llama-server /usr/local/bin/llama-server
ENV HOME=/tmp LLAMA_CACHE=/tmp
LABEL cortex.engine="llamacpp" cortex.engine-version="$VERSION" org.opencontainers.image.title="CORTEX llama.cpp CPU engine"
ENTRYPOINT ["/usr/local/bin/llama-server"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build --network=none -q -t "$TAG" "$WORK/ctx" >&2
echo "$TAG"
