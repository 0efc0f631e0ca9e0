#!/usr/bin/env bash
# Install CORTEX from an offline bundle, with no network: what `install.sh --bundle FILE` runs.
#
#   1. take the bundle's wheelhouse out, verified (manifest, signature via openssl, sha256),
#      with the standard library only (scripts/bundle_bootstrap.py);
#   2. create the venv and `pip install --no-index` CORTEX from that wheelhouse;
#   3. `cortexctl bundle import FILE`: verifies everything again and installs models,
#      recipes, engine binaries, images and the wheelhouse ($CORTEX_HOME/wheelhouse).
#
# usage: scripts/install-bundle.sh FILE [--venv DIR] [--allow-unsigned]
#   --venv DIR        where to create the virtual environment (default: $CORTEX_HOME/venv)
#   --allow-unsigned  accept a bundle not signed by a key in $CORTEX_HOME/trusted-keys/
# env: CORTEX_HOME (default ~/.local/share/cortex), PYTHON (default python3)
# prints the cortexctl path on its last line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
BUNDLE=""
VENV=""
ALLOW=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --allow-unsigned) ALLOW=(--allow-unsigned); shift ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) BUNDLE="$1"; shift ;;
  esac
done
[[ -n "$BUNDLE" && -f "$BUNDLE" ]] || { echo "usage: $0 FILE [--venv DIR] [--allow-unsigned]" >&2; exit 2; }
BUNDLE="$(cd "$(dirname "$BUNDLE")" && pwd)/$(basename "$BUNDLE")"
export CORTEX_HOME="${CORTEX_HOME:-$HOME/.local/share/cortex}"
VENV="${VENV:-$CORTEX_HOME/venv}"

WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
echo "[1/3] verifying the bundle and taking out its wheelhouse" >&2
"$PY" "$HERE/bundle_bootstrap.py" "$BUNDLE" --dest "$WHEELS" \
  --trusted-keys "$CORTEX_HOME/trusted-keys" "${ALLOW[@]}"

echo "[2/3] installing CORTEX into $VENV from the wheelhouse (pip --no-index)" >&2
"$PY" -m venv "$VENV"
# PIP_CONFIG_FILE=/dev/null: no host pip config may add an index or find-links.
# --upgrade-strategy eager: every dependency comes from this wheelhouse, at the versions it pins, even
# over an older venv (the import refuses wheels that would shadow installed versions).
PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 "$VENV/bin/python" -m pip install --quiet --no-index \
  --disable-pip-version-check --find-links "$WHEELS" --upgrade --upgrade-strategy eager cortex-appliance

echo "[3/3] importing the bundle" >&2
"$VENV/bin/cortexctl" bundle import "$BUNDLE" "${ALLOW[@]}"
echo "ready: $VENV/bin/cortexctl up" >&2
echo "$VENV/bin/cortexctl"
