#!/usr/bin/env bash
# Make a local Docker Engine answer, for tests and CI (idempotent).
# Installs docker.io via apt-get when dockerd is missing, starts
# `dockerd --bridge=none --iptables=false` in the background when `docker info`
# fails, and waits until it answers. Engines use host networking, so no bridge
# or iptables rules are needed (and none may be created on build hosts).
# exit 0 when the engine answers; non-zero with a reason otherwise.
set -euo pipefail

LOG="${DOCKERD_LOG:-/var/log/cortex-dockerd.log}"
WAIT_S="${DOCKERD_WAIT_S:-60}"

if docker info >/dev/null 2>&1; then
  echo "dockerd already answering" >&2
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [[ "$(id -u)" != "0" ]]; then
    echo "dockerd is not installed and we are not root: install docker.io first" >&2
    exit 1
  fi
  echo "installing docker.io (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io >&2 || { apt-get update -q >&2 && apt-get install -y -q docker.io >&2; }
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "starting dockerd (log: $LOG)" >&2
  mkdir -p "$(dirname "$LOG")"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >>"$LOG" 2>&1 &
fi

for _ in $(seq 1 "$WAIT_S"); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd is answering" >&2
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within ${WAIT_S}s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
